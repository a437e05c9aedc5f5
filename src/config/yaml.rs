//! A small YAML tree that remembers where every node was written.
//!
//! serde's errors stop at the first problem; the validator needs the whole document with a
//! line and column on every key and value so it can report every problem at once. This module
//! owns turning text into that tree (with `granit-parser`, the parser under serde-saphyr) and
//! nothing else: it knows no config keys.

use std::collections::HashMap;
use std::fmt;

use granit_parser::{Event, Parser, ScalarStyle, Span};

/// A 1-based line and column, as editors show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `~`, `null`, or nothing at all after the colon.
    Null,
    Scalar {
        text: String,
        /// Quoted or block scalars are always strings; only plain ones can be numbers or booleans.
        plain: bool,
        /// An explicit tag such as `!!str`, as written.
        tag: Option<String>,
    },
    Seq(Vec<Node>),
    /// Entries in file order; duplicates are kept so the validator can report them.
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// How a value is named in "expected …, found …" messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Scalar { plain: false, .. } => "a string",
            Value::Scalar { .. } => "a scalar",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}

/// The text is not YAML (or uses a YAML feature configs have no use for).
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    pub pos: Pos,
    pub message: String,
}

/// Deep nesting is never a real config; refusing it keeps hostile input from exhausting the stack.
const MAX_DEPTH: usize = 64;

/// Parse `text` into a tree. `Ok(None)` for a stream with no document (empty or only comments).
pub fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder {
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
    };
    let mut document = None;
    loop {
        let (event, span) = builder.next()?;
        match event {
            Event::StreamEnd => return Ok(document),
            Event::DocumentStart(..) => {
                if document.is_some() {
                    return Err(SyntaxError {
                        pos: Pos::of(&span),
                        message:
                            "a second YAML document (`---`) in the file; a config is one document"
                                .into(),
                    });
                }
                let (event, span) = builder.next()?;
                document = Some(builder.node(event, span, 0)?);
            }
            _ => {}
        }
    }
}

struct Builder<'a> {
    events: Parser<'a, granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
}

impl<'a> Builder<'a> {
    /// The next event that carries meaning (comments are skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), SyntaxError> {
        loop {
            match self.events.next() {
                None => {
                    return Err(SyntaxError {
                        pos: Pos::START,
                        message: "unexpected end of the YAML stream".into(),
                    });
                }
                Some(Err(e)) => {
                    let m = e.marker();
                    return Err(SyntaxError {
                        pos: Pos {
                            line: m.line(),
                            column: m.col() + 1,
                        },
                        message: e.info(),
                    });
                }
                Some(Ok((Event::Comment(..), _))) => continue,
                Some(Ok(pair)) => return Ok(pair),
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Result<Node, SyntaxError> {
        let pos = Pos::of(&span);
        if depth > MAX_DEPTH {
            return Err(SyntaxError {
                pos,
                message: format!("nested more than {MAX_DEPTH} levels deep"),
            });
        }
        let (value, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let plain = style == ScalarStyle::Plain;
                let tag = tag.map(|t| format!("{}{}", t.handle(), t.suffix()));
                let value = if plain
                    && tag.is_none()
                    && matches!(&*text, "" | "~" | "null" | "Null" | "NULL")
                {
                    Value::Null
                } else {
                    Value::Scalar {
                        text: text.into_owned(),
                        plain,
                        tag,
                    }
                };
                (value, anchor)
            }
            Event::SequenceStart(_, anchor, _) => {
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if event == Event::SequenceEnd {
                        break;
                    }
                    items.push(self.node(event, span, depth + 1)?);
                }
                (Value::Seq(items), anchor)
            }
            Event::MappingStart(_, anchor, _) => {
                let mut entries = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if event == Event::MappingEnd {
                        break;
                    }
                    let key = self.node(event, span, depth + 1)?;
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, depth + 1)?;
                    entries.push((key, value));
                }
                (Value::Map(entries), anchor)
            }
            Event::Alias(id) => {
                return match self.anchors.get(&id) {
                    Some(node) => Ok(Node {
                        pos,
                        value: node.value.clone(),
                    }),
                    None => Err(SyntaxError {
                        pos,
                        message: "alias to an unknown anchor".into(),
                    }),
                };
            }
            other => {
                return Err(SyntaxError {
                    pos,
                    message: format!("unexpected YAML event {other:?}"),
                });
            }
        };
        let node = Node { pos, value };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(text: &str) -> Value {
        Value::Scalar {
            text: text.into(),
            plain: true,
            tag: None,
        }
    }

    #[test]
    fn keys_and_values_carry_their_positions() {
        let tree = parse("cluster:\n  enabled: true\n  node_timeout: ~\n")
            .unwrap()
            .unwrap();
        let Value::Map(top) = tree.value else {
            panic!()
        };
        assert_eq!(top[0].0.pos, Pos { line: 1, column: 1 });
        let Value::Map(cluster) = &top[0].1.value else {
            panic!()
        };
        assert_eq!(cluster[0].0.value, scalar("enabled"));
        assert_eq!(
            cluster[0].1.pos,
            Pos {
                line: 2,
                column: 12
            }
        );
        assert_eq!(cluster[1].1.value, Value::Null);
    }

    #[test]
    fn empty_and_comment_only_files_have_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing here\n").unwrap(), None);
    }

    #[test]
    fn quoted_scalars_are_not_plain() {
        let tree = parse("a: \"10\"").unwrap().unwrap();
        let Value::Map(m) = tree.value else { panic!() };
        assert!(matches!(&m[0].1.value, Value::Scalar { plain: false, .. }));
    }

    #[test]
    fn aliases_expand_to_their_anchor() {
        let tree = parse("a: &x {b: 1}\nc: *x\n").unwrap().unwrap();
        let Value::Map(m) = tree.value else { panic!() };
        assert_eq!(m[0].1.value, m[1].1.value);
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let e = parse("a: [1, 2\nb: c").unwrap_err();
        assert!(e.pos.line >= 1, "{e:?}");
        let e = parse("a: b\n---\nc: d\n").unwrap_err();
        assert_eq!(e.pos.line, 2);
    }
}
