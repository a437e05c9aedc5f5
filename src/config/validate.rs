//! Checking a config file: every problem at once, each with file:line:column, key and hint.
//!
//! Two passes. The structural pass walks the span-carrying YAML tree (`yaml.rs`) against the
//! schema (`schema.rs`): unknown keys, duplicate keys, wrong types, bad enum values, bad
//! durations. It also builds a cleaned JSON value holding only the well-formed settings, so the
//! semantic pass (`node_timeout` vs `heartbeat_interval`, single-host backends in cluster mode,
//! plain-text passwords …) still runs on a file that has type errors elsewhere and the user sees
//! everything in one go. Nothing here touches the filesystem or the environment.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::schema::{self, Field, Ty};
use super::yaml::{self, Node, Pos, Value};
use super::{BackendKind, Config, Secs};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The config cannot be used; commands exit 2.
    Error,
    /// The config works but probably not the way the operator wants.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One finding about a config file. Serialized as-is by `config validate --output json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub severity: Severity,
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based.
    pub column: usize,
    /// Dotted key path, e.g. `cluster.node_timeout` or `auth.users[0].username`; empty for the
    /// file as a whole.
    pub key: String,
    pub message: String,
    pub hint: Option<String>,
}

impl Problem {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: ",
            self.file, self.line, self.column, self.severity
        )?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, "\n    hint: {h}")?;
        }
        Ok(())
    }
}

/// Where each key present in the file was written: the key itself and its value.
#[derive(Debug, Default, Clone)]
pub struct KeyIndex {
    keys: HashMap<String, (Pos, Pos)>,
}

impl KeyIndex {
    /// Whether the file sets this key (to anything, including null).
    pub fn has(&self, path: &str) -> bool {
        self.keys.contains_key(path)
    }

    /// The position of the key's value, or of its nearest ancestor written in the file.
    pub fn locate(&self, path: &str) -> Pos {
        let mut p = path;
        loop {
            if let Some((_, value)) = self.keys.get(p) {
                return *value;
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = &p[..i],
                None => return Pos::START,
            }
        }
    }

    /// Whether the file sets this key to a non-null value.
    pub fn has_value(&self, path: &str, tree: Option<&Node>) -> bool {
        self.has(path) && lookup(tree, path).is_some_and(|n| n.value != Value::Null)
    }
}

fn lookup<'a>(tree: Option<&'a Node>, path: &str) -> Option<&'a Node> {
    let mut node = tree?;
    for part in path.split('.') {
        let Value::Map(entries) = &node.value else {
            return None;
        };
        node = entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Scalar { text, .. } if text == part))
            .map(|(_, v)| v)?;
    }
    Some(node)
}

/// The result of checking text: every problem, and the config built from the well-formed part.
#[derive(Debug)]
pub struct Checked {
    pub problems: Vec<Problem>,
    /// `None` only when the text is not YAML or its top level is not a mapping.
    pub config: Option<Config>,
    pub index: KeyIndex,
    pub tree: Option<Node>,
}

/// Check YAML text against the schema and the semantic rules. Pure: no files, no environment.
pub fn check(text: &str, origin: &Path) -> Checked {
    let file = origin.display().to_string();
    let mut w = Walker {
        file,
        problems: Vec::new(),
        index: KeyIndex::default(),
    };
    let tree = match yaml::parse(text) {
        Ok(tree) => tree,
        Err(e) => {
            w.error(
                e.pos,
                "",
                format!("not valid YAML: {}", e.message),
                Some("a config is a YAML mapping of sections, e.g. `cluster:` followed by indented `key: value` lines".into()),
            );
            return w.finish(None, None);
        }
    };
    let Some(root) = tree else {
        // An empty file (or only comments) means "all defaults".
        return w.finish(Some(Config::default()), None);
    };
    if !matches!(root.value, Value::Map(_)) {
        w.error(
            root.pos,
            "",
            format!(
                "the top level of a config must be a mapping of sections (server:, cluster:, sessions:, …), found {}",
                found(&root, false)
            ),
            None,
        );
        return w.finish(None, Some(root));
    }
    let cleaned = w
        .walk_struct("", &root, schema::CONFIG)
        .unwrap_or(Json::Object(Map::new()));
    let config = match serde_json::from_value::<Config>(cleaned) {
        Ok(c) => c,
        Err(e) => {
            // Only reachable if schema.rs and the serde structs disagree.
            w.error(
                Pos::START,
                "",
                format!("internal error: the validator and the config structs disagree: {e}"),
                Some("please report this as a bug in fleetctl".into()),
            );
            return w.finish(None, Some(root));
        }
    };
    semantic(&config, &mut w, &root);
    w.finish(Some(config), Some(root))
}

struct Walker {
    file: String,
    problems: Vec<Problem>,
    index: KeyIndex,
}

impl Walker {
    fn push(
        &mut self,
        severity: Severity,
        pos: Pos,
        key: &str,
        message: String,
        hint: Option<String>,
    ) {
        self.problems.push(Problem {
            severity,
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            key: key.to_string(),
            message,
            hint,
        });
    }

    fn error(&mut self, pos: Pos, key: &str, message: String, hint: Option<String>) {
        self.push(Severity::Error, pos, key, message, hint);
    }

    fn warn_at(&mut self, key: &str, message: String, hint: Option<String>) {
        let pos = self.index.locate(key);
        self.push(Severity::Warning, pos, key, message, hint);
    }

    fn error_at(&mut self, key: &str, message: String, hint: Option<String>) {
        let pos = self.index.locate(key);
        self.push(Severity::Error, pos, key, message, hint);
    }

    fn finish(mut self, config: Option<Config>, tree: Option<Node>) -> Checked {
        self.problems.sort_by_key(|p| (p.line, p.column));
        Checked {
            problems: self.problems,
            config,
            index: self.index,
            tree,
        }
    }

    fn walk_struct(&mut self, path: &str, node: &Node, fields: &'static [Field]) -> Option<Json> {
        let Value::Map(entries) = &node.value else {
            self.error(
                node.pos,
                path,
                format!(
                    "expected a mapping of settings (key: value), found {}",
                    found(node, false)
                ),
                None,
            );
            return None;
        };
        let mut out = Map::new();
        let mut seen: HashMap<&str, Pos> = HashMap::new();
        let mut required_failed = false;
        for (k, v) in entries {
            let Value::Scalar { text: name, .. } = &k.value else {
                self.error(
                    k.pos,
                    path,
                    format!("a key must be a plain name, found {}", k.value.kind()),
                    None,
                );
                continue;
            };
            let key_path = join(path, name);
            if let Some(first) = seen.get(name.as_str()) {
                self.error(
                    k.pos,
                    &key_path,
                    format!("duplicate key `{name}` (first set at line {})", first.line),
                    Some("keep one of them; YAML would silently use only one".into()),
                );
                continue;
            }
            seen.insert(name, k.pos);
            let Some(field) = fields.iter().find(|f| f.name == name) else {
                let hint = unknown_key_hint(name, path, fields);
                let msg = if name == "<<" {
                    "YAML merge keys (`<<`) are not supported in fleetctl configs".to_string()
                } else {
                    format!("unknown key `{name}`")
                };
                self.error(k.pos, &key_path, msg, Some(hint));
                continue;
            };
            self.index.keys.insert(key_path.clone(), (k.pos, v.pos));
            match self.walk_field(&key_path, v, field) {
                Some(value) => {
                    out.insert(name.clone(), value);
                }
                // A list entry missing a required value is dropped whole (already reported).
                None if field.required => required_failed = true,
                None => {}
            }
        }
        let missing: Vec<&str> = fields
            .iter()
            .filter(|f| f.required && !seen.contains_key(f.name))
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            self.error(
                node.pos,
                path,
                format!(
                    "missing required key{} {}",
                    if missing.len() > 1 { "s" } else { "" },
                    ticked(&missing)
                ),
                None,
            );
            return None;
        }
        (!required_failed).then_some(Json::Object(out))
    }

    fn walk_field(&mut self, path: &str, node: &Node, field: &Field) -> Option<Json> {
        if node.value == Value::Null {
            if field.nullable {
                return Some(Json::Null);
            }
            let hint = match field.ty {
                Ty::Struct(_) | Ty::List(_) => format!(
                    "remove the empty `{}:` line, or put its settings under it",
                    field.name
                ),
                _ => format!(
                    "remove `{}` to use the default, or give it a value",
                    field.name
                ),
            };
            self.error(
                node.pos,
                path,
                format!("expected {}, found nothing (null)", describe(&field.ty)),
                Some(hint),
            );
            return None;
        }
        self.walk_ty(path, node, &field.ty)
    }

    fn walk_ty(&mut self, path: &str, node: &Node, ty: &Ty) -> Option<Json> {
        match ty {
            Ty::Struct(fields) => return self.walk_struct(path, node, fields),
            Ty::List(item_ty) => {
                let Value::Seq(items) = &node.value else {
                    self.error(
                        node.pos,
                        path,
                        format!(
                            "expected a list of {}, found {}",
                            describe(item_ty),
                            found(node, false)
                        ),
                        Some("write `[a, b]`, or one `- item` per line".into()),
                    );
                    return None;
                };
                let mut out = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let item_path = format!("{path}[{i}]");
                    self.index
                        .keys
                        .insert(item_path.clone(), (item.pos, item.pos));
                    if item.value == Value::Null {
                        self.error(
                            item.pos,
                            &item_path,
                            format!("expected {}, found an empty list item", describe(item_ty)),
                            None,
                        );
                        continue;
                    }
                    if let Some(v) = self.walk_ty(&item_path, item, item_ty) {
                        out.push(v);
                    }
                }
                return Some(Json::Array(out));
            }
            _ => {}
        }
        let secret = matches!(ty, Ty::Secret | Ty::PasswordHash);
        let Value::Scalar { text, plain, tag } = &node.value else {
            self.error(
                node.pos,
                path,
                format!("expected {}, found {}", describe(ty), found(node, secret)),
                None,
            );
            return None;
        };
        if let Some(tag) = tag {
            self.error(
                node.pos,
                path,
                format!("YAML tags are not supported here (found `{tag}`)"),
                Some("remove the tag; quote the value if it must be a string".into()),
            );
            return None;
        }
        match scalar(ty, text, *plain) {
            Ok(v) => Some(v),
            Err((message, hint)) => {
                let message = message.unwrap_or_else(|| {
                    format!("expected {}, found {}", describe(ty), found(node, secret))
                });
                self.error(node.pos, path, message, hint);
                None
            }
        }
    }
}

type ScalarError = (Option<String>, Option<String>);

/// Convert one scalar to the JSON the serde structs expect, or explain why it does not fit.
/// An error with `None` as message gets the generic "expected …, found …".
fn scalar(ty: &Ty, text: &str, plain: bool) -> Result<Json, ScalarError> {
    let unquote = |what: &str| Some(format!("remove the quotes: {what} is written without them"));
    match *ty {
        Ty::Bool => match (plain, text) {
            (true, "true" | "True" | "TRUE") => Ok(Json::Bool(true)),
            (true, "false" | "False" | "FALSE") => Ok(Json::Bool(false)),
            (false, "true" | "false") => Err((None, unquote("a boolean"))),
            _ => {
                let lower = text.to_ascii_lowercase();
                let hint = match lower.as_str() {
                    "yes" | "y" | "on" => {
                        "YAML 1.2 booleans are only `true` and `false`: write `true`"
                    }
                    "no" | "n" | "off" => {
                        "YAML 1.2 booleans are only `true` and `false`: write `false`"
                    }
                    _ => "write `true` or `false`",
                };
                Err((None, Some(hint.into())))
            }
        },
        Ty::Int { min, max } => {
            let n = whole_number(text, plain).ok_or_else(|| {
                (
                    None,
                    (!plain && whole_number(text, true).is_some())
                        .then(|| unquote("a number"))
                        .flatten(),
                )
            })?;
            if n < i128::from(min) || n > i128::from(max) {
                return Err((
                    Some(format!("{n} is out of range: expected {min} or more")),
                    None,
                ));
            }
            Ok(Json::from(n as i64))
        }
        Ty::Port { any_free } => {
            let n = whole_number(text, plain).ok_or_else(|| {
                (
                    None,
                    (!plain && whole_number(text, true).is_some())
                        .then(|| unquote("a port"))
                        .flatten(),
                )
            })?;
            let lowest = if any_free { 0 } else { 1 };
            if n < lowest || n > 65535 {
                let hint = if any_free {
                    "use 1-65535, or 0 to let the OS pick any free port"
                } else {
                    "use 1-65535 (Redis listens on 6379 by default)"
                };
                return Err((Some(format!("port {n} is out of range")), Some(hint.into())));
            }
            Ok(Json::from(n as u64))
        }
        Ty::Duration => duration(text, plain),
        Ty::Str | Ty::Secret => Ok(Json::String(text.into())),
        Ty::Path => {
            if text.trim().is_empty() {
                return Err((
                    Some("a path cannot be empty".into()),
                    Some("remove the key to use the default".into()),
                ));
            }
            Ok(Json::String(text.into()))
        }
        Ty::Url => {
            let rest = text
                .strip_prefix("https://")
                .or_else(|| text.strip_prefix("http://"));
            match rest {
                Some(r) if !r.is_empty() && !r.contains(char::is_whitespace) => {
                    Ok(Json::String(text.into()))
                }
                _ => Err((
                    None,
                    Some("write a full URL such as https://server-01.company.com:8768".into()),
                )),
            }
        }
        // The same parser the running node uses (`server::proxy`), so nothing that validates
        // is dropped at start-up.
        Ty::Cidr => match crate::server::proxy::Cidr::parse(text) {
            Ok(_) => Ok(Json::String(text.into())),
            Err(why) => Err((
                Some(why),
                Some("write an address (10.0.0.5) or a CIDR block (10.0.0.0/8)".into()),
            )),
        },
        Ty::HostPort => match crate::store::redis::parse_host_port(text) {
            Some(_) => Ok(Json::String(text.into())),
            None => Err((
                None,
                Some("write host:port, e.g. 10.0.0.11:26379 or [fd00::11]:26379".into()),
            )),
        },
        Ty::Enum(options) => {
            if options.contains(&text) {
                return Ok(Json::String(text.into()));
            }
            let msg = format!(
                "unknown value {text:?}: expected one of {}",
                ticked(options)
            );
            let hint = closest(text, options).map(|c| format!("did you mean `{c}`?"));
            Err((Some(msg), hint))
        }
        Ty::Sha256 => {
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(Json::String(text.into()))
            } else {
                Err((
                    Some(format!(
                        "expected a SHA-256 digest (64 hex digits), found {} characters",
                        text.len()
                    )),
                    Some(
                        "`fleetctl keys new --name NAME` prints a key together with this entry"
                            .into(),
                    ),
                ))
            }
        }
        Ty::PasswordHash => {
            let ok = argon2::password_hash::phc::PasswordHash::new(text)
                .is_ok_and(|h| h.algorithm.as_str() == "argon2id");
            if ok {
                Ok(Json::String(text.into()))
            } else {
                // Never echo the value: it may be a password pasted into the wrong place.
                Err((
                    Some("expected an argon2id hash ($argon2id$v=19$…), found something else (not shown)".into()),
                    Some("generate one with `fleetctl users hash-password`; never put the password itself in the config".into()),
                ))
            }
        }
        Ty::List(_) | Ty::Struct(_) => unreachable!("collections are walked, not converted"),
    }
}

fn duration(text: &str, plain: bool) -> Result<Json, ScalarError> {
    let hint =
        Some("write seconds (30) or a number with a unit: 500ms, 10s, 5m, 1h, 1d".to_string());
    if plain {
        if let Some(n) = whole_number(text, true) {
            if n < 0 {
                return Err((
                    Some(format!("a duration cannot be negative, found {n}")),
                    hint,
                ));
            }
            return u64::try_from(n)
                .map(Json::from)
                .map_err(|_| (Some("duration is too large".into()), None));
        }
        if text.parse::<f64>().is_ok() {
            return Err((
                Some(format!(
                    "fractional seconds are not supported, found {text}"
                )),
                Some("use milliseconds, e.g. 1500ms".into()),
            ));
        }
    }
    let starts_with_digit = text.trim_start().starts_with(|c: char| c.is_ascii_digit());
    match Secs::parse(text) {
        Ok(_) => Ok(Json::String(text.into())),
        Err(_) if !starts_with_digit => Err((
            Some(format!(
                "expected a number of seconds, found string {text:?}"
            )),
            hint,
        )),
        Err(msg) => Err((Some(msg), hint)),
    }
}

/// A plain decimal integer as serde-saphyr reads it: optional sign, no leading zeros.
fn whole_number(text: &str, plain: bool) -> Option<i128> {
    if !plain {
        return None;
    }
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
        || digits.len() > 30
    {
        return None;
    }
    text.parse::<i128>().ok()
}

fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "true or false".into(),
        Ty::Int { .. } => "a whole number".into(),
        Ty::Port { .. } => "a port number (1-65535)".into(),
        Ty::Duration => "a number of seconds or a duration such as 10s".into(),
        Ty::Str | Ty::Secret => "a string".into(),
        Ty::Url => "an http:// or https:// URL".into(),
        Ty::Cidr => "an IP address or CIDR block".into(),
        Ty::HostPort => "host:port".into(),
        Ty::Enum(options) => format!("one of {}", ticked(options)),
        Ty::Path => "a path".into(),
        Ty::Sha256 => "a SHA-256 digest (64 hex digits)".into(),
        Ty::PasswordHash => "an argon2id hash".into(),
        Ty::List(inner) => format!("a list of {}", describe(inner)),
        Ty::Struct(_) => "a mapping of settings".into(),
    }
}

/// How a wrong value is shown in "expected …, found …"; secrets are never echoed.
fn found(node: &Node, secret: bool) -> String {
    match &node.value {
        Value::Scalar { text, plain, .. } if !secret => {
            if *plain && (whole_number(text, true).is_some() || text.parse::<f64>().is_ok()) {
                format!("the number {text}")
            } else if *plain && matches!(text.as_str(), "true" | "false") {
                format!("the boolean {text}")
            } else {
                format!("string {text:?}")
            }
        }
        Value::Scalar { .. } => "a string (not shown)".into(),
        other => other.kind().into(),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn ticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(&name.to_ascii_lowercase(), c), *c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn unknown_key_hint(name: &str, path: &str, fields: &[Field]) -> String {
    let names: Vec<&str> = fields.iter().map(|f| f.name).collect();
    if let Some(c) = closest(name, &names) {
        return format!("did you mean `{c}`?");
    }
    let elsewhere: Vec<String> = schema::sections_with_key(name)
        .into_iter()
        .filter(|s| s != path && !s.contains("[]"))
        .collect();
    if let Some(section) = elsewhere.first() {
        return format!(
            "`{name}` is a key of `{section}`, not of `{}`",
            if path.is_empty() {
                "the top level"
            } else {
                path
            }
        );
    }
    format!("valid keys here: {}", ticked(&names))
}

/// The rules that need more than one key: DESIGN §3's semantic checks and a few an operator
/// would want to hear about before a rollout.
fn semantic(c: &Config, w: &mut Walker, root: &Node) {
    let tree = Some(root);
    if c.storage.encrypt_reports && c.security.encryption_key_file.is_none() {
        w.error_at(
            "storage.encrypt_reports",
            "`storage.encrypt_reports` is true but `security.encryption_key_file` is not set".into(),
            Some(
                "add `security:` with `encryption_key_file:` naming a key file (`fleetctl keys new --kind encryption` prints a line for it)"
                    .into(),
            ),
        );
    }
    let cl = &c.cluster;
    let hb = cl.heartbeat_interval.as_duration();
    let timeout = cl.node_timeout.as_duration();
    if hb.is_zero() {
        w.error_at(
            "cluster.heartbeat_interval",
            "heartbeat_interval must be greater than 0".into(),
            Some("10s is a good start".into()),
        );
    } else if timeout <= hb * 2 {
        let key = if w.index.has("cluster.node_timeout") {
            "cluster.node_timeout"
        } else {
            "cluster.heartbeat_interval"
        };
        w.error_at(
            key,
            format!(
                "node_timeout ({}) must be more than twice heartbeat_interval ({}), so one late heartbeat does not mark a live node inactive",
                cl.node_timeout, cl.heartbeat_interval
            ),
            Some(format!("set node_timeout to {} or more", Secs(hb * 3))),
        );
    }
    if cl.prune_after < cl.node_timeout {
        w.error_at(
            "cluster.prune_after",
            format!("prune_after ({}) is shorter than node_timeout ({}): nodes would be forgotten before they are even marked inactive", cl.prune_after, cl.node_timeout),
            Some("the default is 1d".into()),
        );
    }
    if let Some(tls) = &c.server.tls {
        match (&tls.cert, &tls.key) {
            (Some(_), None) => w.error_at(
                "server.tls",
                "TLS needs both `cert` and `key`; only `cert` is set".into(),
                Some("add `key:` with the private key's path, or remove `tls`".into()),
            ),
            (None, Some(_)) => w.error_at(
                "server.tls",
                "TLS needs both `cert` and `key`; only `key` is set".into(),
                Some("add `cert:` with the certificate's path, or remove `tls`".into()),
            ),
            _ => {}
        }
    }
    if c.sessions.ttl.as_duration().is_zero() {
        w.error_at(
            "sessions.ttl",
            "sessions.ttl must be greater than 0".into(),
            Some("3600 (one hour) is the default".into()),
        );
    } else if c.sessions.max_lifetime < c.sessions.ttl {
        w.warn_at(
            "sessions.max_lifetime",
            format!("max_lifetime ({}) is shorter than ttl ({}): every session ends at max_lifetime, so ttl has no effect", c.sessions.max_lifetime, c.sessions.ttl),
            None,
        );
    }
    if c.agent.interval.as_duration().is_zero() {
        w.error_at(
            "agent.interval",
            "agent.interval must be greater than 0".into(),
            None,
        );
    } else if c.storage.offline_after <= c.agent.interval {
        w.warn_at(
            "storage.offline_after",
            format!("offline_after ({}) is not longer than agent.interval ({}): machines will flap to offline between reports", c.storage.offline_after, c.agent.interval),
            Some(format!("use at least {}", Secs(c.agent.interval.as_duration() * 3))),
        );
    }

    for s in super::secrets::SECRETS {
        let inline = w.index.has_value(s.inline_key, tree);
        if inline && w.index.has_value(s.file_key, tree) {
            w.error_at(
                s.file_key,
                format!("both `{}` and `{}` are set", s.inline_key, s.file_key),
                Some(format!(
                    "keep only `{}` (or the {} environment variable)",
                    s.file_key, s.env
                )),
            );
        } else if inline {
            w.warn_at(
                s.inline_key,
                "Redis password in plain text in the config file".into(),
                Some(format!(
                    "move it to a file named by `{}`, or set the {} environment variable",
                    s.file_key, s.env
                )),
            );
        }
    }

    redis_locations(c, w);
    postgres_locations(c, w);

    let mut usernames: HashMap<&str, usize> = HashMap::new();
    for (i, u) in c.auth.users.iter().enumerate() {
        if let Some(first) = usernames.insert(&u.username, i) {
            w.error_at(
                &format!("auth.users[{i}].username"),
                format!(
                    "user `{}` is listed twice (first as auth.users[{first}])",
                    u.username
                ),
                None,
            );
        }
    }
    for list in ["api_keys", "admin_tokens", "metrics_tokens"] {
        let entries = match list {
            "api_keys" => &c.auth.api_keys,
            "admin_tokens" => &c.auth.admin_tokens,
            _ => &c.auth.metrics_tokens,
        };
        let mut digests: HashMap<String, usize> = HashMap::new();
        for (i, k) in entries.iter().enumerate() {
            if let Some(first) = digests.insert(k.sha256.to_ascii_lowercase(), i) {
                w.warn_at(
                    &format!("auth.{list}[{i}].sha256"),
                    format!("the same key is listed twice (also auth.{list}[{first}])"),
                    None,
                );
            }
        }
    }

    if !cl.enabled {
        return;
    }
    match cl.backend {
        BackendKind::Redis | BackendKind::Postgres => {}
        kind => {
            let why = if kind == BackendKind::Sqlite {
                "SQLite's locking is unreliable over network filesystems"
            } else {
                "lock files are not safe over network filesystems"
            };
            w.warn_at(
                "cluster.backend",
                format!("cluster mode with the `{kind}` backend works on one host only: every node must open the same state_path, and {why}"),
                Some("use `backend: redis` or `postgres` for nodes on several hosts".into()),
            );
        }
    }
    if !shared(c.sessions.backend) {
        w.warn_at(
            "sessions.backend",
            format!("sessions in `{}` cannot be shared across hosts: a user is logged out whenever a node on another host answers", c.sessions.backend),
            Some("use `sessions.backend: redis` or `postgres` in cluster mode".into()),
        );
    }
    if !shared(c.storage.backend) {
        w.warn_at(
            "storage.backend",
            "fleet data in SQLite is local to one host: with nodes on several hosts, each sees only the agents that reported to it".into(),
            Some("use `storage.backend: redis` or `postgres` for nodes on several hosts".into()),
        );
    }
    if c.server.port == 0 {
        w.warn_at(
            "server.port",
            "port 0 picks a random port: other nodes and the load balancer cannot know it".into(),
            Some("set a fixed port such as 8768".into()),
        );
    }
    if let Some(url) = &c.server.advertise_url
        && ["://localhost", "://127.", "://[::1]"]
            .iter()
            .any(|l| url.contains(l))
    {
        w.warn_at(
            "server.advertise_url",
            format!("{url} is a loopback address: other hosts cannot reach this node there"),
            None,
        );
    }
    if let Some(id) = cl.node_id.as_deref().filter(|id| *id != "auto") {
        w.warn_at(
            "cluster.node_id",
            format!("node_id is fixed to `{id}`: every node started with this file registers under the same id"),
            Some("leave it out (or `auto`) unless this file belongs to one host only".into()),
        );
    }
    if c.auth.users.is_empty() {
        w.warn_at(
            "auth.users",
            "cluster mode without `auth.users`: no one can log in to the dashboard on every node"
                .into(),
            Some("add a user with a hash from `fleetctl users hash-password`".into()),
        );
    }
    if c.auth.api_keys.is_empty() {
        w.warn_at(
            "auth.api_keys",
            "no `auth.api_keys`: agents cannot report to this cluster".into(),
            Some("mint one with `fleetctl keys new --name NAME`".into()),
        );
    }
    if c.auth.admin_tokens.is_empty() {
        w.warn_at(
            "auth.admin_tokens",
            "no `auth.admin_tokens`: admin commands with `--server` (cluster status, nodes drain) cannot authenticate".into(),
            Some("mint one with `fleetctl keys new --kind admin --name NAME`".into()),
        );
    }
}

/// One place a Redis connection is configured, with its keys' names in the file.
struct RedisLocation<'a> {
    /// `cluster.redis_` or `sessions.redis.`: the key names are `{prefix}host` and so on.
    prefix: &'static str,
    /// The section's backend is `redis`, so these settings are used.
    used: bool,
    host: &'a str,
    port: u16,
    sentinels: &'a [String],
    master_name: Option<&'a str>,
    tls: bool,
    ca_file: bool,
    sentinel_password: bool,
}

/// Sentinel, TLS and ACL settings of the three Redis locations: a key that would be ignored
/// is an error, and cluster mode on one plain Redis is a warning.
fn redis_locations(c: &Config, w: &mut Walker) {
    let cl = &c.cluster;
    let locations = [
        RedisLocation {
            prefix: "cluster.redis_",
            used: cl.backend == BackendKind::Redis,
            host: &cl.redis_host,
            port: cl.redis_port,
            sentinels: &cl.redis_sentinels,
            master_name: cl.redis_master_name.as_deref(),
            tls: cl.redis_tls,
            ca_file: cl.redis_ca_file.is_some(),
            sentinel_password: cl.redis_sentinel_password.is_some()
                || cl.redis_sentinel_password_file.is_some(),
        },
        section_location("sessions.redis.", c.sessions.backend, &c.sessions.redis),
        section_location("storage.redis.", c.storage.backend, &c.storage.redis),
    ];
    let mut warned: Vec<(&str, u16)> = Vec::new();
    for l in locations {
        let key = |name: &str| format!("{}{name}", l.prefix);
        // Written in the file counts even when every entry was malformed (already reported).
        let has_sentinels = !l.sentinels.is_empty() || w.index.has(&key("sentinels"));
        if has_sentinels {
            if l.master_name.is_none_or(str::is_empty) {
                w.error_at(
                    &key("sentinels"),
                    format!(
                        "`{}` is set but `{}` is not",
                        key("sentinels"),
                        key("master_name")
                    ),
                    Some(format!(
                        "add `{}:` with the name the sentinels monitor (`sentinel monitor NAME …`)",
                        key("master_name")
                    )),
                );
            }
            for conflicting in ["host", "port"] {
                if w.index.has(&key(conflicting)) {
                    w.error_at(
                        &key(conflicting),
                        format!(
                            "both `{}` and `{}` are set: with Sentinel the master's address comes from the sentinels",
                            key(conflicting),
                            key("sentinels")
                        ),
                        Some(format!("remove `{}`", key(conflicting))),
                    );
                }
            }
        } else {
            for (set, name) in [
                (l.master_name.is_some(), "master_name"),
                (l.sentinel_password, "sentinel_password"),
            ] {
                if set {
                    w.error_at(
                        &key(name),
                        format!(
                            "`{}` does nothing without `{}`",
                            key(name),
                            key("sentinels")
                        ),
                        Some(format!(
                            "list the sentinels in `{}: [\"host:port\", …]`, or remove `{}`",
                            key("sentinels"),
                            key(name)
                        )),
                    );
                }
            }
        }
        if l.ca_file && !l.tls {
            w.error_at(
                &key("ca_file"),
                format!(
                    "`{}` is set but `{}` is not true: the connection would not use TLS",
                    key("ca_file"),
                    key("tls")
                ),
                Some(format!(
                    "set `{}: true`, or remove `{}`",
                    key("tls"),
                    key("ca_file")
                )),
            );
        }
        // One warning per single server, at the first location that uses it: three sections
        // on one Redis are one single point of failure, not three.
        let server = (l.host, l.port);
        if c.cluster.enabled && l.used && !has_sentinels && !warned.contains(&server) {
            warned.push(server);
            w.warn_at(
                &key("host"),
                "a single Redis is a single point of failure; use Sentinel (see docs/cluster.md, \"Redis Sentinel\")".into(),
                Some(format!(
                    "set `{}` and `{}`",
                    key("sentinels"),
                    key("master_name")
                )),
            );
        }
    }
}

fn section_location<'a>(
    prefix: &'static str,
    backend: BackendKind,
    r: &'a super::RedisConfig,
) -> RedisLocation<'a> {
    RedisLocation {
        prefix,
        used: backend == BackendKind::Redis,
        host: &r.host,
        port: r.port,
        sentinels: &r.sentinels,
        master_name: r.master_name.as_deref(),
        tls: r.tls,
        ca_file: r.ca_file.is_some(),
        sentinel_password: r.sentinel_password.is_some() || r.sentinel_password_file.is_some(),
    }
}

/// Backends that nodes on several hosts can share.
fn shared(kind: BackendKind) -> bool {
    matches!(kind, BackendKind::Redis | BackendKind::Postgres)
}

/// The three `postgres:` sections: a URL that would override or leak another key is an
/// error, and so is a CA file without TLS; an unencrypted connection to another host in
/// cluster mode is a warning.
fn postgres_locations(c: &Config, w: &mut Walker) {
    let sections = [
        ("cluster.postgres.", c.cluster.backend, &c.cluster.postgres),
        (
            "sessions.postgres.",
            c.sessions.backend,
            &c.sessions.postgres,
        ),
        ("storage.postgres.", c.storage.backend, &c.storage.postgres),
    ];
    for (prefix, backend, pg) in sections {
        let key = |name: &str| format!("{prefix}{name}");
        if let Some(url) = &pg.url {
            match crate::store::postgres::parse_url(url) {
                Err(message) => w.error_at(
                    &key("url"),
                    message,
                    Some("write `postgres://user@host:5432/dbname`".into()),
                ),
                Ok(parsed) => {
                    if parsed.has_password {
                        w.error_at(
                            &key("url"),
                            "the URL holds a password: it would show in logs and `config show`"
                                .into(),
                            Some(format!(
                                "move it to `{}` (or the environment)",
                                key("password_file")
                            )),
                        );
                    }
                    if parsed.has_sslmode {
                        w.error_at(
                            &key("url"),
                            "the URL sets sslmode: TLS is set by its own key, so the two cannot disagree".into(),
                            Some(format!("remove it from the URL and set `{}`", key("sslmode"))),
                        );
                    }
                }
            }
            for overridden in ["host", "port", "dbname", "user"] {
                if w.index.has(&key(overridden)) {
                    w.error_at(
                        &key(overridden),
                        format!(
                            "both `{}` and `{}` are set: the URL decides",
                            key(overridden),
                            key("url")
                        ),
                        Some(format!("remove `{}`, or the URL", key(overridden))),
                    );
                }
            }
        }
        if pg.ca_file.is_some() && pg.sslmode == super::PgSslMode::Disable {
            w.error_at(
                &key("ca_file"),
                format!(
                    "`{}` is set but `{}` is `disable`: the connection would not use TLS",
                    key("ca_file"),
                    key("sslmode")
                ),
                Some(format!(
                    "set `{}: verify-full`, or remove `{}`",
                    key("sslmode"),
                    key("ca_file")
                )),
            );
        }
        let host = match &pg.url {
            Some(url) => crate::store::postgres::parse_url(url)
                .ok()
                .and_then(|p| p.host),
            None => Some(pg.host.clone()),
        };
        let loopback = host.as_deref().is_none_or(|h| {
            h == "localhost" || h.starts_with("127.") || h == "::1" || h.starts_with('/')
        });
        if c.cluster.enabled
            && backend == BackendKind::Postgres
            && pg.sslmode == super::PgSslMode::Disable
            && !loopback
        {
            w.warn_at(
                &key("sslmode"),
                format!(
                    "the connection to PostgreSQL at {} is not encrypted: reports, sessions and the password exchange cross the network in the clear",
                    host.unwrap_or_default()
                ),
                Some(format!("set `{}: verify-full` (and `{}` for a private CA)", key("sslmode"), key("ca_file"))),
            );
        }
    }
}
