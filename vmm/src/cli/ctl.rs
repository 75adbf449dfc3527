//! `ankh ctl`: talk to a running `ankh up --control PATH` (protocol in
//! `ankh_vmm::system::control`).

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket `ankh up --control` opened.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Crash a server right after its next request is delivered (mid-request).
    Kill {
        /// The server domain.
        domain: String,
    },
    /// Per server: requests, checkpoints, recoveries, share finished in the window.
    Status,
}

pub fn run(args: CtlArgs) -> Result<ExitCode, Box<dyn Error>> {
    let request = match &args.command {
        CtlCommand::Kill { domain } => serde_json::json!({ "cmd": "kill", "domain": domain }),
        CtlCommand::Status => serde_json::json!({ "cmd": "status" }),
    };
    let mut stream = UnixStream::connect(&args.control).map_err(|e| {
        format!(
            "cannot reach {} ({e}); is `ankh up --control {}` running?",
            args.control.display(),
            args.control.display()
        )
    })?;
    writeln!(stream, "{request}")?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    print!("{answer}");
    let ok = serde_json::from_str::<serde_json::Value>(&answer)
        .map(|v| v["ok"] == true)
        .unwrap_or(false);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::status::USAGE)
    })
}
