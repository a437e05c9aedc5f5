//! Exit codes and the error types that choose them.
//!
//! The codes are a stable contract for scripts and Nagios-style checks (DESIGN §1):
//! 0 ok, 1 runtime failure, 2 usage or invalid config, 3 degraded cluster, 4 no active node.
//! Only `main.rs` turns these into a process exit; library code returns them.

use std::fmt;

/// A process exit status with a documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitCode(pub u8);

impl ExitCode {
    pub const OK: ExitCode = ExitCode(0);
    /// Backend unreachable, HTTP error, I/O failure: something outside the user's input failed.
    pub const FAILURE: ExitCode = ExitCode(1);
    /// Bad flags or an invalid config: the user must change what they typed.
    pub const USAGE: ExitCode = ExitCode(2);
    /// `cluster status`: fewer active nodes than `--min-active`, or no leader.
    pub const DEGRADED: ExitCode = ExitCode(3);
    /// `cluster status`: no node is active.
    pub const DOWN: ExitCode = ExitCode(4);
}

/// The exit-code table shown in `--help` and the man page.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  runtime failure (backend unreachable, HTTP error, I/O error)
  2  usage error or invalid config
  3  cluster status: degraded (fewer active nodes than --min-active, or no leader)
  4  cluster status: no active node";

/// An error caused by what the user typed or wrote in a file (exit code 2).
///
/// Library code returns this for bad flags, bad config files and other input the user must fix;
/// `main.rs` finds it anywhere in an `anyhow` chain and exits 2 instead of 1.
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Marks a command whose capability lands in a later release, so it fails loudly instead of
/// pretending to succeed.
pub fn not_implemented(command: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`fleetctl {command}` is not implemented yet in this version; see README.md for what works today"
    )
}

/// Which exit code an error maps to: 2 when the user's input is at fault, else 1.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    // A `UsageError` attached with `.context(..)` is not a plain link of `chain()` (anyhow
    // wraps it with its cause); anyhow's own downcast finds context types at any level.
    if err.downcast_ref::<UsageError>().is_some() {
        return ExitCode::USAGE;
    }
    for cause in err.chain() {
        if cause.downcast_ref::<UsageError>().is_some()
            || cause.downcast_ref::<crate::config::ConfigError>().is_some()
        {
            return ExitCode::USAGE;
        }
    }
    ExitCode::FAILURE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_error_as_context_exits_2() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let err = anyhow::Error::new(io).context(UsageError("cannot listen on x".into()));
        assert_eq!(code_for(&err), ExitCode::USAGE);
        let err = anyhow::anyhow!("plain runtime failure");
        assert_eq!(code_for(&err), ExitCode::FAILURE);
        let err = anyhow::Error::new(UsageError("bad flag".into())).context("while parsing");
        assert_eq!(code_for(&err), ExitCode::USAGE);
    }
}
