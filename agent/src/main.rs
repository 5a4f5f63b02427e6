//! The `hearth` binary: parses flags, sets up logging, runs the chosen command and maps its
//! error to an exit code. All logic lives in the `hearth_agent` library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = hearth_agent::cli::Cli::parse();
    hearth_agent::logging::init(cli.log_format);
    match hearth_agent::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("hearth: {}", hearth_agent::error::error_text(err.as_ref()));
            ExitCode::from(hearth_agent::error::exit_code(&err))
        }
    }
}
