//! Starting a process domain: the tender's executable (a sealed memfd), the control
//! memfd, and the process itself, started by one long-lived thread so that
//! `PR_SET_PDEATHSIG` (which follows the thread that forked) kills every domain
//! process when the VMM ends, and only then.

use std::fs::File;
use std::io::Write as _;
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};

use virtio_seep::abi::process::{CONTROL_FD, RAM_FD};

/// The descriptor the tender's executable is passed as (execed through /proc).
const TENDER_FD: RawFd = 5;

/// A new memfd called `name`, close-on-exec.
pub(super) fn memfd(name: &str, flags: libc::c_uint) -> std::io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(std::io::Error::other)?;
    // SAFETY: memfd_create reads the NUL-terminated name and returns a new fd or -1.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is new and owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The tender's executable, written once into a sealed memfd.
fn tender_file() -> std::io::Result<&'static File> {
    static TENDER: OnceLock<File> = OnceLock::new();
    if let Some(file) = TENDER.get() {
        return Ok(file);
    }
    let mut file = memfd("ankh-tender", libc::MFD_ALLOW_SEALING)?;
    file.write_all(ankh_image_catalog::tender())?;
    let seals = libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
    // SAFETY: F_ADD_SEALS takes an int and touches no memory.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_ADD_SEALS, seals) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(TENDER.get_or_init(|| file))
}

/// What the spawner thread is asked to start: the two memfds' descriptors.
struct Request {
    ram: RawFd,
    control: RawFd,
    reply: mpsc::Sender<std::io::Result<Child>>,
}

/// Starts a tender with `ram` as fd 3 and `control` as fd 4 (see
/// `virtio_seep::abi::process`), on the spawner thread.
pub(super) fn spawn_tender(ram: &File, control: &File) -> std::io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Request>>> = OnceLock::new();
    let tender = tender_file()?.as_raw_fd();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("ankh-spawner".into())
            .spawn(move || {
                for request in requests {
                    let child = start(tender, request.ram, request.control);
                    // The asker may have given up; nothing to do then.
                    let _ = request.reply.send(child);
                }
            })
            .expect("spawning the process domains' spawner thread");
        Mutex::new(sender)
    });
    let (reply, answer) = mpsc::channel();
    let request = Request {
        ram: ram.as_raw_fd(),
        control: control.as_raw_fd(),
        reply,
    };
    spawner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(request)
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?;
    // The descriptors stay open: the caller holds `ram` and `control` until we return.
    answer
        .recv()
        .map_err(|_| std::io::Error::other("the spawner thread is gone"))?
}

fn start(tender: RawFd, ram: RawFd, control: RawFd) -> std::io::Result<Child> {
    let mut command = Command::new(format!("/proc/self/fd/{TENDER_FD}"));
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure runs in the forked child before exec and only makes
    // async-signal-safe system calls (fcntl, dup2, prctl) on descriptors it was given.
    unsafe {
        command.pre_exec(move || in_child(ram, control, tender));
    }
    command.spawn()
}

/// In the forked child, before exec: the memfds at the numbers the tender expects, and
/// death with the VMM.
fn in_child(ram: RawFd, control: RawFd, tender: RawFd) -> std::io::Result<()> {
    // Out of the way first: a source may sit on a target number.
    let high = |fd: RawFd| {
        // SAFETY: F_DUPFD_CLOEXEC duplicates an open descriptor.
        match unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 100) } {
            -1 => Err(std::io::Error::last_os_error()),
            new => Ok(new),
        }
    };
    let moves = [
        (high(ram)?, RAM_FD),
        (high(control)?, CONTROL_FD),
        (high(tender)?, TENDER_FD),
    ];
    for (from, to) in moves {
        // SAFETY: dup2 of open descriptors; the new one is not close-on-exec.
        if unsafe { libc::dup2(from, to) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    for (resource, limit) in DOMAIN_LIMITS {
        let limit = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        // SAFETY: setrlimit reads the struct it is given.
        if unsafe { libc::setrlimit(resource, &limit) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Host resources a domain process may not take beyond what the VMM gave it (kept
/// across exec):
/// - no core file: a domain that breaks its tender's signal handling dies of its
///   signal, and would otherwise leave its guest RAM on the host's disk, at every
///   spawn;
/// - a small stack: the tender runs on its own static stacks and the guest on its
///   RAM, but the kernel's initial stack still grows on demand, up to this, for
///   whoever moves the stack pointer there (8 MiB or unlimited by default).
const DOMAIN_LIMITS: [(libc::__rlimit_resource_t, libc::rlim_t); 2] = [
    (libc::RLIMIT_CORE, 0),
    (libc::RLIMIT_STACK, DOMAIN_STACK_LIMIT),
];

/// The kernel's initial stack of a domain process at most (room for exec's arguments
/// and auxiliary vector, which the tender reads nothing of).
const DOMAIN_STACK_LIMIT: libc::rlim_t = 128 << 10;
