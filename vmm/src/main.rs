//! `ankh`: the command-line front end of the Ankh VMM.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("ankh: error: {}", cli::error_chain(err.as_ref()));
            ExitCode::from(cli::status_of(err.as_ref()))
        }
    }
}
