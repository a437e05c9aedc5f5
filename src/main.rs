//! The `fleetctl` binary: parse the command line, run the command, print errors, exit.
//! Everything else lives in the library.

use clap::Parser;
use fleetctl::cli::Cli;
use fleetctl::exit;

/// mimalloc instead of glibc malloc: a request allocates and frees many small objects on
/// whichever worker thread polls it, and glibc's arena locks showed up as ~20% of the
/// profile of a session read (docs/performance.md). mimalloc's per-thread free lists avoid
/// the lock.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let code = match cli.run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("fleetctl: error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            exit::code_for(&err)
        }
    };
    std::process::ExitCode::from(code.0)
}
