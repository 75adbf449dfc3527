//! `ankh ctl`: talk to a running `ankh up --control PATH` (protocol in
//! `ankh_vmm::system::control`).

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket `ankh up --control` opened.
    #[arg(long, value_name = "PATH")]
    control: PathBuf,
    #[command(subcommand)]
    command: CtlCommand,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum WhenArg {
    Now,
    Idle,
    MidRequest,
    WindowClosed,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Crash,
    Hang,
    Corrupt,
}

#[derive(Debug, Subcommand)]
enum CtlCommand {
    /// Inject a fault into a server; its recovery policy then acts.
    Kill {
        /// The server domain.
        domain: String,
        /// When: as soon as it is not running (`now`), the next time it is idle,
        /// right after its next request is delivered, or right after its window
        /// closes mid-request.
        #[arg(long, value_enum, default_value = "mid-request")]
        when: WhenArg,
        /// What: a crash, a hang (caught by the watchdog), or a corrupted stack
        /// pointer (the guest faults by itself).
        #[arg(long, value_enum, default_value = "crash")]
        kind: KindArg,
    },
    /// Per server: requests, checkpoints, recoveries, share finished in the window.
    Status,
}

pub fn run(args: CtlArgs) -> Result<ExitCode, Box<dyn Error>> {
    let request = match &args.command {
        CtlCommand::Kill { domain, when, kind } => {
            serde_json::json!({
                "cmd": "kill",
                "domain": domain,
                "when": word(when),
                "kind": word(kind),
            })
        }
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

/// The word a flag value is written as, which is also the control protocol's word.
fn word(value: &impl ValueEnum) -> String {
    value
        .to_possible_value()
        .expect("no skipped values")
        .get_name()
        .to_owned()
}
