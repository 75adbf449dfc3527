//! `ankh ctl`: talk to a running `ankh up --control PATH` (protocol in
//! `ankh_vmm::system::control`).

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::ExitCode;

use ankh_vmm::system::control::Request;
use ankh_vmm::system::injection::{Kind, When};
use clap::{Args, Subcommand, ValueEnum};
use serde::Deserialize;

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

impl From<WhenArg> for When {
    fn from(arg: WhenArg) -> When {
        match arg {
            WhenArg::Now => When::Now,
            WhenArg::Idle => When::Idle,
            WhenArg::MidRequest => When::MidRequest,
            WhenArg::WindowClosed => When::WindowClosed,
        }
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum KindArg {
    Crash,
    Hang,
    Corrupt,
}

impl From<KindArg> for Kind {
    fn from(arg: KindArg) -> Kind {
        match arg {
            KindArg::Crash => Kind::Crash,
            KindArg::Hang => Kind::Hang,
            KindArg::Corrupt => Kind::Corrupt,
        }
    }
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
    /// Per server: requests, checkpoints, recoveries, share of requests finished in
    /// the window, share of run time inside the window.
    Status,
}

/// No system answers at `--control PATH`: a wrong path, or no `ankh up` running.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {path} ({cause}); is `ankh up --control {path}` running?", path = path.display())]
pub struct Unreachable {
    path: PathBuf,
    // Said in the message, where a person reads it first; not a `source` too, or the
    // line would say it twice.
    cause: std::io::Error,
}

/// What `ankh ctl` reads of a reply: whether it was accepted (it prints the rest).
#[derive(Deserialize)]
struct ReplyOutcome {
    ok: bool,
}

pub fn run(args: CtlArgs) -> Result<ExitCode, Box<dyn Error>> {
    let request = match args.command {
        CtlCommand::Kill { domain, when, kind } => Request::Kill {
            domain,
            when: when.into(),
            kind: kind.into(),
        },
        CtlCommand::Status => Request::Status {},
    };
    let mut stream = UnixStream::connect(&args.control).map_err(|cause| Unreachable {
        path: args.control.clone(),
        cause,
    })?;
    writeln!(stream, "{}", request.to_line())?;
    // One request: the system answers it and closes.
    stream.shutdown(Shutdown::Write)?;
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer)?;
    out!("{answer}")?;
    let ok = serde_json::from_str::<ReplyOutcome>(&answer).is_ok_and(|reply| reply.ok);
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::status::USAGE)
    })
}
