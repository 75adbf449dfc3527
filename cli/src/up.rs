//! `ankh up`: boot a whole system and run it until it is quiet.

use std::error::Error;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use ankh_domains::{Policy, Role, SystemDescription};
use ankh_vmm::console::StdoutConsole;
use ankh_vmm::disk_image::DiskImage;
use ankh_vmm::domain::Substrate;
use ankh_vmm::ipc::router::Wait;
use ankh_vmm::system::control::{ControlHub, ControlServer, ControlSocketError, ExitSignals};
use ankh_vmm::system::{self, DomainEnd, SystemOptions};
use ankh_vmm::{DomainExit, KvmHost};
use clap::Args;
use virtio_seep::message::DomainId;

use super::run_image::resolve_image;
use super::status;

/// The OS that `ankh up` boots without `--config`.
pub const BUILTIN_OS: &str = include_str!("../../systems/os.toml");

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The system description (TOML); without it, the built-in OS (systems/os.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// A program init runs (`/bin/<PROGRAM>`), with its arguments after spaces, e.g.
    /// `suite` or `'ubench syscall'`; repeat it to run several side by side.
    #[arg(long, value_name = "PROGRAM")]
    run: Vec<String>,
    /// Override the number of host threads that run vCPUs.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
    threads: Option<u64>,
    /// Recovery policy of every server, overriding the description.
    #[arg(long, value_enum)]
    policy: Option<PolicyArg>,
    /// What to do when a server faults after its recovery window closed: shut the
    /// system down cleanly (default) or restart the server (best effort).
    #[arg(long, value_enum, default_value_t = Fallback::Shutdown)]
    fallback: Fallback,
    /// Open a control socket here (see `ankh ctl`): hot-kills and status while the
    /// system runs. PATH must be free or a stale socket; it is removed at the end.
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
    /// Stop a domain as hung when it runs this long without an exit.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    watchdog_ms: u64,
    /// Stop a server as hung when it runs this long on one request (exits or not).
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1..))]
    request_budget_ms: u64,
    /// The disk image of the domain with `disk = true` (the OS's root file system): kept
    /// across runs, created from the built-in root file system when it does not exist.
    /// Without it, a temporary copy of the built-in one is used and deleted at the end.
    #[arg(long, value_name = "PATH")]
    disk: Option<PathBuf>,
    /// What runs each domain: a KVM VM, or a Linux process under a seccomp filter (the
    /// microkernel build of the same OS; see docs/process-substrate.md).
    #[arg(long, value_enum, default_value_t = Substrate::Kvm)]
    substrate: Substrate,
}

/// The disk of a system with a disk domain: the image at `path` (created when missing)
/// or a temporary copy of the built-in root disk; for an OS (a system with an `init`),
/// `/etc/init.job` on it lists `programs` (none: init's default job).
pub fn prepare_disk(
    description: &SystemDescription,
    path: Option<&std::path::Path>,
    programs: &[String],
) -> Result<Option<DiskImage>, Box<dyn Error>> {
    if description.disk_domain().is_none() {
        if let Some(path) = path {
            return Err(ankh_vmm::disk_image::DiskImageError::Unwanted {
                path: path.to_owned(),
            }
            .into());
        }
        return Ok(None);
    }
    let disk = match path {
        Some(path) => DiskImage::persistent(path)?,
        None => DiskImage::temporary()?,
    };
    if description.domains.iter().any(|d| d.name == "init") {
        disk.write_file(system::INIT_JOBS, system::init_jobs(programs)?.as_bytes())?;
    }
    Ok(Some(disk))
}

/// Whether an image name is known: built in, or an existing file.
pub fn image_exists(name: &str) -> bool {
    ankh_images::find(name).is_some() || std::path::Path::new(name).is_file()
}

/// `--policy`, as the command line spells it.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum PolicyArg {
    None,
    Stateless,
    Naive,
    Pessimistic,
    Enhanced,
}

impl From<PolicyArg> for Policy {
    fn from(arg: PolicyArg) -> Policy {
        match arg {
            PolicyArg::None => Policy::None,
            PolicyArg::Stateless => Policy::Stateless,
            PolicyArg::Naive => Policy::Naive,
            PolicyArg::Pessimistic => Policy::Pessimistic,
            PolicyArg::Enhanced => Policy::Enhanced,
        }
    }
}

/// `--fallback`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Fallback {
    Shutdown,
    Restart,
}

pub fn run(args: UpArgs) -> Result<ExitCode, Box<dyn Error>> {
    let mut description = match &args.config {
        Some(path) => SystemDescription::from_path(path, &image_exists)?,
        None => SystemDescription::from_toml_str(BUILTIN_OS, &image_exists)?,
    };
    if let Some(threads) = args.threads {
        // Rebuilt, so the override is validated like the file.
        description = description
            .into_builder()
            .threads(usize::try_from(threads)?)
            .build(&image_exists)?;
    }
    if let Some(policy) = args.policy {
        for spec in &mut description.domains {
            spec.policy = policy.into();
        }
    }
    let host = KvmHost::open()?;
    // Kept to the end of `run`: dropping it (on every return) removes the socket.
    let (control, _control_server) = match &args.control {
        Some(path) => {
            let (hub, server) = open_control(&description, path)?;
            (Some(hub), Some(server))
        }
        None => (None, None),
    };
    let disk = prepare_disk(&description, args.disk.as_deref(), &args.run)?;
    let options = SystemOptions {
        control,
        fallback_restart: args.fallback == Fallback::Restart,
        watchdog_timeout: Duration::from_millis(args.watchdog_ms),
        request_budget: Duration::from_millis(args.request_budget_ms),
        root_fs: system::root_fs_with_jobs(&args.run)?.into(),
        disk: disk.as_ref().map(|d| d.path().to_owned()),
        substrate: args.substrate,
        ..SystemOptions::new(Arc::new(|_| Box::new(StdoutConsole)))
    };
    let image_of =
        |name: &str| resolve_image(name).map_err(|e| ankh_vmm::ImageError::Load(e.to_string()));
    let report = system::run_system(&host, &description, &image_of, &options);
    // However the run ended, a kept image is left clean for e2fsck (the temporary
    // one goes away).
    if let Some(disk) = disk.as_ref().filter(|d| !d.is_temporary()) {
        super::disk::leave_clean(disk.path())?;
    }
    let report = report?;
    if let Some(stop) = &report.stop {
        for domain in &report.domains {
            outln!("ankh: domain {} {}", domain.name, describe(&domain.end).0)?;
        }
        return Ok(ExitCode::from(match stop {
            system::SystemStop::Halted { domain, fault } => {
                outln!("ankh: system halted: domain {domain} faulted with no recovery ({fault})")?;
                status::FAULT
            }
            system::SystemStop::Shutdown { domain, reason } => {
                outln!("ankh: controlled shutdown: domain {domain}: {reason}")?;
                status::SHUTDOWN
            }
        }));
    }
    if let Some(init) = report.domain("init") {
        // An OS: its status is init's.
        for domain in &report.domains {
            outln!("ankh: domain {} {}", domain.name, describe(&domain.end).0)?;
        }
        if let DomainEnd::Waiting(_) = init.end {
            outln!("{}", went_quiet(&report.domains))?;
        }
        return Ok(ExitCode::from(match &init.end {
            DomainEnd::Stopped(DomainExit::Exited { code }) => {
                u8::try_from(*code).unwrap_or(u8::MAX)
            }
            DomainEnd::Stopped(DomainExit::Halted) => status::CLEAN,
            DomainEnd::HostError(_) => status::HOST_ERROR,
            _ => status::FAULT,
        }));
    }
    let mut worst = status::CLEAN;
    for domain in &report.domains {
        let (text, code) = describe(&domain.end);
        outln!("ankh: domain {} {text}", domain.name)?;
        worst = worst.max(code);
    }
    Ok(ExitCode::from(worst))
}

/// The control socket at `path` for the servers of `description`. Opened before the
/// vCPU threads start: they must inherit the blocked exit signals, which the control
/// loop takes to remove the socket before the process dies of them.
fn open_control(
    description: &SystemDescription,
    path: &std::path::Path,
) -> Result<(Arc<ControlHub>, ControlServer), ControlSocketError> {
    let servers = description
        .domains
        .iter()
        .filter(|spec| spec.role != Role::Process)
        .map(|spec| spec.name.clone());
    let hub = Arc::new(ControlHub::new(servers));
    let server = ControlServer::start(Arc::clone(&hub), path, ExitSignals::RemoveSocketAndDie)?;
    Ok((hub, server))
}

/// The line for an OS that went quiet before init ended: no domain could run any
/// more, each waiting for a message or a reply that nothing will send. It names the
/// calls still waiting for a reply, so that the cycle or the lost answer can be found.
fn went_quiet(domains: &[system::DomainReport]) -> String {
    let name_of = |id: DomainId| {
        domains
            .iter()
            .find(|domain| domain.id == id)
            .map_or_else(|| format!("domain {id}"), |domain| domain.name.clone())
    };
    let calls: Vec<String> = domains
        .iter()
        .filter_map(|domain| match domain.end {
            DomainEnd::Waiting(Wait::Reply { request, callee }) => Some(format!(
                "{} for {}'s reply to request {request}",
                domain.name,
                name_of(callee)
            )),
            _ => None,
        })
        .collect();
    let calls = match calls.is_empty() {
        true => "none waits for a reply".to_string(),
        false => calls.join(", "),
    };
    format!("ankh: stopped: init has not ended, and no domain can run any more (waiting: {calls})")
}

/// One line about how a domain ended, and the exit status it would give.
fn describe(end: &DomainEnd) -> (String, u8) {
    match end {
        DomainEnd::Stopped(DomainExit::Exited { code: 0 } | DomainExit::Halted) => {
            (format!("{}", DomainExit::Exited { code: 0 }), status::CLEAN)
        }
        DomainEnd::Stopped(exit @ DomainExit::Exited { .. }) => {
            (exit.to_string(), status::GUEST_ERROR_CODE)
        }
        DomainEnd::Stopped(exit) => (exit.to_string(), status::FAULT),
        DomainEnd::Waiting(wait) => (format!("waiting ({wait:?})"), status::CLEAN),
        DomainEnd::HostError(error) => (format!("host error: {error}"), status::HOST_ERROR),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ankh_vmm::system::{CheckpointCount, DomainReport};

    fn domain(id: DomainId, name: &str, end: DomainEnd) -> DomainReport {
        DomainReport {
            id,
            name: name.into(),
            end,
            checkpoints: CheckpointCount::default(),
        }
    }

    #[test]
    fn a_quiet_system_names_the_calls_still_waiting_for_a_reply() {
        let receive = DomainEnd::Waiting(Wait::Receive { from: None });
        let domains = [
            domain(2, "vfs", receive.clone()),
            domain(
                7,
                "suite",
                DomainEnd::Waiting(Wait::Reply {
                    request: 1042,
                    callee: 2,
                }),
            ),
            domain(
                8,
                "lost",
                DomainEnd::Waiting(Wait::Reply {
                    request: 9,
                    callee: 40,
                }),
            ),
        ];
        assert_eq!(
            went_quiet(&domains),
            "ankh: stopped: init has not ended, and no domain can run any more (waiting: \
             suite for vfs's reply to request 1042, lost for domain 40's reply to request 9)"
        );
        assert!(went_quiet(&domains[..1]).ends_with("(waiting: none waits for a reply)"));
    }
}
