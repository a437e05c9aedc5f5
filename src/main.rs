//! The `fleetctl` binary: parse the command line, run the command, print errors, exit.
//! Everything else lives in the library.

use clap::Parser;
use fleetctl::cli::Cli;
use fleetctl::exit;

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
