//! init and its job file when VFS answers a read with an error: `ERESTART` (a
//! rollback) is read again, `ENOENT` means "no job file", anything else ends init.
//! VFS is the real server; PM is a fake that records what init spawns.

use std::collections::VecDeque;

use ankh_proto::opcode::{PM_SPAWN, PM_WAIT, VFS_READ};
use ankh_proto::pm::{PidRecord, WaitStatus};
use ankh_proto::sys::EXIT_NORMAL;
use ankh_proto::{DomainId, Errno};
use ankh_ulib::errno::{EIO, ENOSYS, ERESTART};
use ankh_ulib::vfs::{O_CREAT, O_WRONLY};
use ankh_ulib::{Channel, Os, Servers};
use zerocopy::IntoBytes;

use super::{Lines, Local, DS, MM, PM, VFS};
use crate::init;
use crate::paths::{DEFAULT_JOB, INIT_FAILED, INIT_JOB_PATH};
use crate::restart::RESTART_ATTEMPTS;

/// The harness's servers, with reads that fail on demand and a fake PM.
struct Scripted {
    local: Local,
    /// What the next `VFS_READ`s answer instead of VFS, in order.
    read_errors: VecDeque<Errno>,
    /// `VFS_READ`s answered so far (by the script or by VFS).
    reads: usize,
    /// What init spawned: each program and its arguments.
    spawned: Vec<Vec<String>>,
}

/// The pid the fake PM gives the `n`-th child (0-based).
fn child_pid(n: usize) -> u32 {
    100 + u32::try_from(n).unwrap()
}

impl Channel for Scripted {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        match (to, opcode) {
            (VFS, VFS_READ) => {
                self.reads += 1;
                if let Some(errno) = self.read_errors.pop_front() {
                    return Err(errno);
                }
                self.local.call(to, opcode, payload, bulk, reply)
            }
            (PM, PM_SPAWN) => {
                let words = ankh_proto::wire::split(bulk)?;
                let pid = child_pid(self.spawned.len());
                // The path, then argv (argv[0] repeats the path in init's spawns).
                self.spawned
                    .push(words[1..].iter().map(|w| (*w).to_owned()).collect());
                Ok(reply(PidRecord { pid, reserved: 0 }.as_bytes(), &[]))
            }
            (PM, PM_WAIT) => {
                let pid = u32::from_le_bytes(payload[..4].try_into().unwrap());
                let status = WaitStatus {
                    pid,
                    code: 0,
                    cause: EXIT_NORMAL,
                    reserved: 0,
                };
                Ok(reply(status.as_bytes(), &[]))
            }
            (PM, _) => Err(ENOSYS),
            _ => self.local.call(to, opcode, payload, bulk, reply),
        }
    }
}

/// init's OS, with `jobs` as the job file (none: no job file), whose reads first
/// answer `read_errors`.
fn init_os(jobs: Option<&str>, read_errors: &[Errno]) -> Os<Scripted> {
    let scripted = Scripted {
        local: Local::new(),
        read_errors: VecDeque::new(),
        reads: 0,
        spawned: Vec::new(),
    };
    let servers = Servers {
        pm: Some(PM),
        vfs: Some(VFS),
        ds: Some(DS),
        mm: Some(MM),
    };
    let mut os = Os::with_servers(scripted, servers, 0x10_0000..0x8000_0000_0000_0000);
    if let Some(jobs) = jobs {
        let fd = os.open(INIT_JOB_PATH, O_CREAT | O_WRONLY).unwrap();
        assert_eq!(os.write(fd, jobs.as_bytes()), Ok(jobs.len()));
        os.close(fd).unwrap();
    }
    os.channel().read_errors = read_errors.iter().copied().collect();
    os
}

/// Runs init on `os`: its code and lines.
fn run_init(os: &mut Os<Scripted>) -> (u32, Vec<String>) {
    let mut lines = Lines::default();
    let code = init::run(os, &mut lines);
    (code, lines.0)
}

const JOBS: &str = "/bin/suite --runs 2\n";

#[test]
fn init_runs_the_listed_job_when_the_job_file_reads_without_error() {
    let mut os = init_os(Some(JOBS), &[]);
    let (code, lines) = run_init(&mut os);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(os.channel().spawned, [["/bin/suite", "--runs", "2"]]);
}

#[test]
fn init_reads_the_job_file_again_after_erestart() {
    let mut os = init_os(Some(JOBS), &[ERESTART]);
    let (code, lines) = run_init(&mut os);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        os.channel().spawned,
        [["/bin/suite", "--runs", "2"]],
        "the listed job, not {DEFAULT_JOB}"
    );
    assert!(os.channel().reads >= 2, "the file was read again");
    assert_eq!(
        lines,
        ["init: starting", "init: /bin/suite exited with 0"],
        "a retried read is not worth a line"
    );
}

#[test]
fn init_fails_when_the_job_file_cannot_be_read() {
    let mut os = init_os(Some(JOBS), &[EIO]);
    let (code, lines) = run_init(&mut os);
    assert_eq!(code, INIT_FAILED);
    assert!(
        os.channel().spawned.is_empty(),
        "{:?}",
        os.channel().spawned
    );
    assert_eq!(
        lines,
        ["init: starting", "init: cannot read /etc/init.job errno 5"]
    );
}

#[test]
fn init_gives_up_when_every_read_is_restarted() {
    let mut os = init_os(Some(JOBS), &[ERESTART; RESTART_ATTEMPTS]);
    let (code, lines) = run_init(&mut os);
    assert_eq!(code, INIT_FAILED, "{lines:?}");
    assert!(os.channel().spawned.is_empty());
    assert_eq!(os.channel().reads, RESTART_ATTEMPTS);
    assert_eq!(
        lines.last().map(String::as_str),
        Some("init: cannot read /etc/init.job errno 1001")
    );
}

#[test]
fn init_runs_its_default_job_only_without_a_job_file() {
    let mut os = init_os(None, &[]);
    let (code, lines) = run_init(&mut os);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(os.channel().spawned, [[DEFAULT_JOB]]);
}
