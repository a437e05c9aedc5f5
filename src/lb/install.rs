//! Where generated config text meets the system: written atomically, and checked by the real
//! load balancer binary (`haproxy -c`, `nginx -t`).
//!
//! A config file that a running LB may reload at any moment must never be seen half-written,
//! and a config the LB rejects must never replace a working one: [`Staged`] (the one atomic
//! write of `store::fs`) writes a temp file in the destination's directory, the caller may
//! validate it, and only `commit` renames it into place.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::Kind;
pub use crate::store::fs::Staged;

/// Write `text` to `dest` so readers see the old file or the new one, never a mix.
pub fn write_atomically(dest: &Path, text: &str) -> anyhow::Result<()> {
    crate::store::fs::write_atomic(dest, text.as_bytes())
        .with_context(|| format!("cannot write {}", dest.display()))
}

/// What the real validator said about a config file.
#[derive(Debug)]
pub struct Verdict {
    /// The validator accepted the file.
    pub valid: bool,
    /// The command line that was run, for the user to rerun by hand.
    pub command: String,
    /// Its stdout and stderr, as it printed them.
    pub output: String,
}

/// Find `program` on PATH or in the sbin directories (Debian puts haproxy and nginx in
/// /usr/sbin, which is not on a normal user's PATH).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// Run the real validator on `file`. `runtime_dir` is nginx's prefix (where relative paths and
/// the temp directories it creates while testing live); the file's own directory otherwise.
pub fn validate(kind: Kind, file: &Path, runtime_dir: Option<&Path>) -> anyhow::Result<Verdict> {
    let program = kind.program();
    let binary = find_program(program).with_context(|| {
        format!(
            "`{program}` not found on PATH or in /usr/sbin: install {program} (Debian: \
             apt install {program}) to use --check"
        )
    })?;
    let mut cmd = Command::new(&binary);
    match kind {
        Kind::Haproxy => {
            cmd.arg("-c").arg("-f").arg(file);
        }
        Kind::Nginx => {
            let prefix = runtime_dir
                .map(Path::to_path_buf)
                .or_else(|| file.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| PathBuf::from("."));
            // -e stderr: the compiled-in error log (/var/log/nginx) may not be writable.
            cmd.arg("-t")
                .arg("-e")
                .arg("stderr")
                .arg("-c")
                .arg(file)
                .arg("-p")
                .arg(prefix);
        }
    }
    let command = format!(
        "{} {}",
        binary.display(),
        cmd.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", binary.display()))?;
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    Ok(Verdict {
        valid: out.status.success(),
        command,
        output,
    })
}
