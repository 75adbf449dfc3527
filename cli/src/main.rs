//! `ankh`: the command-line front end of the Ankh VMM: its subcommands and their exit
//! statuses.
//!
//! It is its own package, apart from the VMM library (`ankh-vmm`), because it links the
//! built guest images (`ankh-images`, whose build script builds them): the library does
//! not, so it compiles while the guests build, and only this binary waits for them.
#![forbid(unsafe_code)]

/// `println!` that returns the error instead of panicking: `?` it. A reader that went
/// away (`ankh images | head`) then ends the command normally (see [`is_broken_pipe`]).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)
    }};
}

/// `print!` that returns the error instead of panicking (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        write!(std::io::stdout().lock(), $($arg)*)
    }};
}

mod bench;
mod campaign;
mod ctl;
mod demo;
mod disk;
mod images;
mod run_image;
mod up;

use std::error::Error;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::fmt::writer::MakeWriterExt;

fn main() -> ExitCode {
    let args = Cli::parse();
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
    // The VMM library finds the built-in images (and the tender, the root file system
    // and disk) in the catalog this binary embeds.
    ankh_images::install();
    // Faults name the SSE/AVX instruction a guest ran (the decoder lives with the
    // images, not in the VMM core).
    ankh_vmm::fault::name_simd_with(ankh_images::simd::describe_simd);
    match dispatch(args) {
        Ok(code) => code,
        // The reader of our output went away (`ankh images | head`): a normal end.
        Err(err) if is_broken_pipe(err.as_ref()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ankh: error: {}", error_chain(err.as_ref()));
            ExitCode::from(status_of(err.as_ref()))
        }
    }
}

/// Exit statuses of `ankh`, documented in the README.
pub mod status {
    /// The guest exited with code 0 or halted.
    pub const CLEAN: u8 = 0;
    /// The guest exited cleanly with a non-zero code.
    pub const GUEST_ERROR_CODE: u8 = 1;
    /// Bad command line or system description.
    pub const USAGE: u8 = 2;
    /// The guest faulted.
    pub const FAULT: u8 = 3;
    /// The host could not do the job: no KVM, bad image, ...
    pub const HOST_ERROR: u8 = 4;
    /// The system shut down cleanly because no consistent recovery existed.
    pub const SHUTDOWN: u8 = 5;
    /// `ankh disk check`: the image is not consistent.
    pub const INCONSISTENT: u8 = 1;
}

/// Ankh runs the components of a multi-server OS in isolated micro-VMs that survive
/// their own crashes.
#[derive(Debug, Parser)]
#[command(name = "ankh", version, about, long_about = None)]
#[command(
    after_help = "Exit status: `ankh up` of an OS with init: init's status (its \
job's code, 128 + cause when the job faulted or was killed, 127 when init could not \
start or wait for it; 3 when the OS went quiet before init ended). Otherwise 0 clean \
stop, 1 guest exit code != 0, 3 guest fault (or a halt). \
Always: 2 bad command line or system description, 4 host error (no KVM, bad image), \
5 controlled shutdown; ankh disk check: 0 consistent, 1 not."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the images built into this binary.
    Images,
    /// Boot one image in a domain VM and report how it ended.
    RunImage(run_image::RunImageArgs),
    /// Boot a whole system (domains talking over virtio-seep) and run it until quiet.
    Up(up::UpArgs),
    /// Talk to a running system's control socket: hot-kill a server, show status.
    Ctl(ctl::CtlArgs),
    /// Run the conformance suite while hot-killing every server mid-request, then
    /// print a recovery report.
    Demo(demo::DemoArgs),
    /// Tools for a system's disk image (`ankh disk check IMG`).
    #[command(subcommand)]
    Disk(disk::DiskCommand),
    /// Run a benchmark and print its figures (never a pass/fail test).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Fault-injection campaigns: inject faults into the servers with hardware
    /// breakpoints, run the suite after each, and report survivability per policy.
    #[command(subcommand)]
    Campaign(campaign::CampaignCommand),
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> Result<ExitCode, Box<dyn Error>> {
    match cli.command {
        Command::Images => images::list(),
        Command::RunImage(args) => run_image::run(args),
        Command::Up(args) => up::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Ctl(args) => ctl::run(args),
        Command::Disk(which) => disk::run(which),
        Command::Bench(which) => bench::run(which),
        Command::Campaign(which) => campaign::run(which),
    }
}

/// The exit status for an error: when the error or any of its causes is the user's
/// input (a bad system description or `--run` program, an unknown image, a path that
/// is missing, a directory or not theirs, a `--disk` or `--control` that cannot be
/// used, a system that does not answer, an impossible benchmark), it is 2, like a bad
/// flag; anything else is a host error (4).
pub fn status_of(err: &(dyn Error + 'static)) -> u8 {
    let mut cause = Some(err);
    while let Some(error) = cause {
        if is_usage(error) {
            return status::USAGE;
        }
        cause = error.source();
    }
    status::HOST_ERROR
}

/// Whether `err` itself (not its causes) is a mistake of the person at the command
/// line: something they can fix by asking differently.
fn is_usage(err: &(dyn Error + 'static)) -> bool {
    use ankh_vmm::system::SystemError;
    let system = match err.downcast_ref::<SystemError>() {
        Some(SystemError::NoDiskImage { .. }) => true,
        Some(SystemError::Disk(disk)) => disk.is_usage(),
        Some(SystemError::Image { source, .. }) => source.is_usage(),
        _ => false,
    };
    system
        || err.is::<ankh_domains::DescriptionError>()
        || err.is::<ankh_vmm::system::BadProgram>()
        || err.is::<ctl::Unreachable>()
        || err.is::<campaign::CampaignUsage>()
        || err.is::<run_image::UnknownImage>()
        || err
            .downcast_ref::<ankh_vmm::disk_image::DiskImageError>()
            .is_some_and(ankh_vmm::disk_image::DiskImageError::is_usage)
        || err
            .downcast_ref::<ankh_vmm::devices::blk::DiskError>()
            .is_some_and(ankh_vmm::devices::blk::DiskError::is_usage)
        || err
            .downcast_ref::<ankh_vmm::ImageError>()
            .is_some_and(ankh_vmm::ImageError::is_usage)
        || err
            .downcast_ref::<ankh_vmm::system::control::ControlSocketError>()
            .is_some_and(ankh_vmm::system::control::ControlSocketError::is_usage)
        || err
            .downcast_ref::<ankh_vmm::bench::boot::BootBenchError>()
            .is_some_and(ankh_vmm::bench::boot::BootBenchError::is_usage)
}

/// Whether `err` (or a cause of it) is a write to a pipe whose reader went away
/// (`ankh images | head`): the output was not wanted any more, a normal end.
pub fn is_broken_pipe(err: &(dyn Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(error) = cause {
        let io = error.downcast_ref::<std::io::Error>();
        if io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return true;
        }
        cause = error.source();
    }
    false
}

/// `error: cause: cause` on one line.
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
