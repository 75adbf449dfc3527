//! `ankh`: the command-line front end of the Ankh VMM.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::fmt::writer::MakeWriterExt;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // The library reports recovery events (and warnings) through `tracing`; the CLI
    // prints events on stdout as bare lines, as a log a person reads along the
    // console, and warnings and errors on stderr. `RUST_LOG`-style filtering is not
    // needed: the library logs little.
    let writer = std::io::stderr
        .with_max_level(tracing::Level::WARN)
        .or_else(std::io::stdout);
    tracing_subscriber::fmt()
        .with_writer(writer)
        .without_time()
        .with_level(false)
        .with_target(false)
        .with_ansi(false)
        .init();
    // Faults name the SSE/AVX instruction a guest ran (the decoder lives with the
    // image builder, not in the VMM core).
    ankh_vmm::fault::name_simd_with(ankh_images::simd::describe_simd);
    match cli::dispatch(args) {
        Ok(code) => code,
        // The reader of our output went away (`ankh images | head`): a normal end.
        Err(err) if cli::is_broken_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ankh: error: {}", cli::error_chain(err.as_ref()));
            ExitCode::from(cli::status_of(err.as_ref()))
        }
    }
}
