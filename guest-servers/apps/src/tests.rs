//! The suite's server sections, init's job parsing, the benchmark and flood, run
//! against the real DS, VFS and MM server crates in this process (PM and processes
//! need the VMM: those sections are skipped).

use std::collections::HashMap;

use ankh_ds::DataStore;
use ankh_mm::MemoryManager;
use ankh_proto::opcode::DS_PUBLISH;
use ankh_proto::opcode::SYS_ROOT_FS;
use ankh_proto::rootfs::{push, ENTRY_DIR, ENTRY_FILE};
use ankh_proto::server::{Endpoint, Handled, Kernel, Reply, Request, Server};
use ankh_proto::{DomainId, Errno, Pid};
use ankh_ulib::errno::{EBADF, ENOENT, ENOSYS, ERESTART};
use ankh_ulib::vfs::{O_CREAT, O_RDWR};
use ankh_ulib::{Channel, Os, Servers};
use ankh_vfs::Vfs;

use crate::bench::{Bench, Budget};
use crate::init::parse_jobs;
use crate::out::Out;
use crate::restart::{Watched, RESTART_ATTEMPTS};
use crate::suite::runs::parse_runs;
use crate::suite::{self, Sections};

mod init_job;

/// Domain ids of the servers in the harness (the order of the system description).
const DS: DomainId = 1;
const VFS: DomainId = 2;
const MM: DomainId = 3;
const PM: DomainId = 4;
/// The app's pid.
const APP: Pid = 5;

/// The servers, run synchronously: a call is a `handle`, nested calls recurse.
struct Local {
    ds: DataStore,
    vfs: Vfs,
    mm: MemoryManager,
    next_id: u64,
}

/// What a server may do in the harness: call DS or the kernel, answer parked requests
/// (which the harness records; the app never waits on one here).
struct LocalKernel<'a> {
    ds: Option<&'a mut DataStore>,
    source: DomainId,
    next_id: &'a mut u64,
    parked: &'a mut HashMap<u64, Reply>,
}

impl Kernel for LocalKernel<'_> {
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno> {
        match (to, opcode) {
            (Endpoint::Kernel, SYS_ROOT_FS) => Ok(Reply::ok_with_bulk(Vec::new(), root_fs())),
            (Endpoint::Ds, _) => {
                let ds = self.ds.as_deref_mut().ok_or(ENOSYS)?;
                *self.next_id += 1;
                let request = Request {
                    source: self.source,
                    opcode,
                    request_id: *self.next_id,
                    payload,
                    bulk,
                };
                let mut parked = HashMap::new();
                let mut inner = LocalKernel {
                    ds: None,
                    source: DS,
                    next_id: self.next_id,
                    parked: &mut parked,
                };
                match ds.handle(&request, &mut inner) {
                    Handled::Reply(reply) if reply.status == 0 => Ok(reply),
                    Handled::Reply(reply) => Err(reply.status),
                    Handled::Deferred => panic!("DS parked a server's call"),
                }
            }
            _ => Err(ENOSYS),
        }
    }

    fn reply(&mut self, request_id: u64, reply: Reply) {
        self.parked.insert(request_id, reply);
    }
}

/// The root file system of the harness: `/bin/child-hog` and `/etc`.
fn root_fs() -> Vec<u8> {
    let mut archive = Vec::new();
    push(&mut archive, ENTRY_DIR, "/bin", b"");
    push(&mut archive, ENTRY_FILE, "/bin/child-hog", b"\x7fELF");
    push(&mut archive, ENTRY_DIR, "/etc", b"");
    archive
}

impl Local {
    fn new() -> Local {
        let mut local = Local {
            ds: DataStore::new(),
            vfs: Vfs::new(),
            mm: MemoryManager::default().with_process_manager(PM),
            next_id: 0,
        };
        let mut parked = HashMap::new();
        let mut kernel = LocalKernel {
            ds: Some(&mut local.ds),
            source: VFS,
            next_id: &mut local.next_id,
            parked: &mut parked,
        };
        local.vfs.start(&mut kernel);
        local
    }
}

impl Channel for Local {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        self.next_id += 1;
        let request = Request {
            source: APP,
            opcode,
            request_id: self.next_id,
            payload,
            bulk,
        };
        let mut parked = HashMap::new();
        let Local {
            ds,
            vfs,
            mm,
            next_id,
        } = self;
        let (server, ds): (&mut dyn Server, _) = match to {
            DS => (ds, None),
            VFS => (vfs, Some(ds)),
            MM => (mm, None),
            _ => return Err(ENOSYS),
        };
        let mut kernel = LocalKernel {
            ds,
            source: to,
            next_id,
            parked: &mut parked,
        };
        let answer = match server.handle(&request, &mut kernel) {
            Handled::Reply(answer) => answer,
            Handled::Deferred => panic!("the app would block forever (opcode {opcode:#x})"),
        };
        if answer.status != 0 {
            return Err(answer.status);
        }
        Ok(reply(&answer.payload, &answer.bulk))
    }
}

/// The harness's app: RAM wide enough for host buffers, without the low pages.
fn app() -> Os<Local> {
    let servers = Servers {
        pm: Some(PM),
        vfs: Some(VFS),
        ds: Some(DS),
        mm: Some(MM),
    };
    Os::with_servers(Local::new(), servers, 0x10_0000..0x8000_0000_0000_0000)
}

/// Collects lines.
#[derive(Debug, Default)]
struct Lines(Vec<String>);

impl Out for Lines {
    fn line(&mut self, line: &[u8]) {
        self.0.push(String::from_utf8_lossy(line).into_owned());
    }
}

/// The suite's app: the harness's, its channel watched for `ERESTART`.
fn suite_app<C: Channel>(channel: C, servers: Servers) -> Os<Watched<C>> {
    Os::with_servers(
        Watched::new(channel),
        servers,
        0x10_0000..0x8000_0000_0000_0000,
    )
}

/// Every server of the harness.
const ALL_SERVERS: Servers = Servers {
    pm: Some(PM),
    vfs: Some(VFS),
    ds: Some(DS),
    mm: Some(MM),
};

#[test]
fn suite_server_sections_pass_against_the_real_servers() {
    let mut os = suite_app(Local::new(), ALL_SERVERS);
    let mut lines = Lines::default();
    let code = suite::run(&mut os, &mut lines, Sections { processes: false });
    let last = lines.0.last().cloned().unwrap_or_default();
    assert!(
        code == 0 && last.ends_with(" passed, 0 failed"),
        "suite failed:\n{}",
        lines.0.join("\n")
    );
    let passed: u64 = last.split(' ').next().unwrap().parse().unwrap();
    assert!(passed >= 60, "only {passed} checks ran");
    assert_eq!(
        lines.0,
        [
            "suite: 0 failed, 0 of them after ERESTART; 0 ERESTART answers".to_owned(),
            last.clone()
        ]
    );
}

/// The harness's servers, but the first `left` requests with `opcode` are answered
/// `ERESTART` (as after a rollback of the server).
struct RestartFirst {
    local: Local,
    opcode: u16,
    left: usize,
}

impl Channel for RestartFirst {
    fn call<R>(
        &mut self,
        to: DomainId,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        if opcode == self.opcode && self.left > 0 {
            self.left -= 1;
            return Err(ERESTART);
        }
        self.local.call(to, opcode, payload, bulk, reply)
    }
}

/// The suite's lines when the first `restarted` DS publishes are answered `ERESTART`.
fn suite_with_restarted_publishes(restarted: usize) -> (u32, Vec<String>) {
    let channel = RestartFirst {
        local: Local::new(),
        opcode: DS_PUBLISH,
        left: restarted,
    };
    let mut os = suite_app(channel, ALL_SERVERS);
    let mut lines = Lines::default();
    let code = suite::run(&mut os, &mut lines, Sections { processes: false });
    (code, lines.0)
}

#[test]
fn suite_makes_a_call_answered_erestart_again() {
    let (code, lines) = suite_with_restarted_publishes(RESTART_ATTEMPTS - 1);
    assert_eq!(code, 0, "{lines:?}");
    assert_eq!(
        lines[0],
        format!(
            "suite: 0 failed, 0 of them after ERESTART; {} ERESTART answers",
            RESTART_ATTEMPTS - 1
        )
    );
}

#[test]
fn suite_tells_failures_after_erestart_from_the_others() {
    // The first publish is answered ERESTART every time: its check failed after
    // ERESTART; the retrieve that follows finds nothing, a failure of its own (no
    // ERESTART in its calls).
    let (code, lines) = suite_with_restarted_publishes(RESTART_ATTEMPTS);
    assert_eq!(code, 1);
    let n = lines.len();
    assert_eq!(
        lines[..n - 1],
        [
            "suite: FAIL ds publish errno 1001 (after ERESTART)".to_owned(),
            "suite: FAIL ds retrieve errno 2".to_owned(),
            format!(
                "suite: 2 failed, 1 of them after ERESTART; {RESTART_ATTEMPTS} ERESTART answers"
            ),
        ],
        "{lines:?}"
    );
    assert!(lines[n - 1].ends_with(" passed, 2 failed"), "{lines:?}");
}

#[test]
fn suite_runs_are_asked_for_with_runs() {
    assert_eq!(parse_runs::<&str>(&[]), Some(1));
    assert_eq!(parse_runs(&["--runs", "2"]), Some(2));
    assert_eq!(parse_runs(&["--runs", "99"]), Some(99));
    for bad in [
        &["--runs", "0"][..],
        &["--runs", "100"],
        &["--runs"],
        &["--runs", "two"],
        &["2"],
        &["--runs", "2", "extra"],
    ] {
        assert_eq!(parse_runs(bad), None, "{bad:?}");
    }
}

#[test]
fn a_later_run_starts_without_what_an_earlier_run_left() {
    // What a run that failed midway leaves: files under /suite, a DS key, an open
    // descriptor. (No PM in the harness: listing processes fails, and says so.)
    let mut os = suite_app(Local::new(), ALL_SERVERS);
    os.mkdir("/suite").unwrap();
    os.mkdir("/suite/d").unwrap();
    let fd = os.open("/suite/d/f", O_CREAT | O_RDWR).unwrap();
    os.ds_publish("suite.k1", "v").unwrap();
    os.ds_publish("other.k", "v").unwrap();
    let mut lines = Lines::default();
    crate::suite::runs::clean_up(&mut os, &mut lines, 2);
    assert_eq!(
        lines.0,
        [
            "suite: clean-up: list processes errno 38",
            "suite: run 2 starts clean: removed 3 files, 1 DS keys, 1 descriptors, 0 processes"
        ]
    );
    assert_eq!(os.stat("/suite").map(|_| ()), Err(ENOENT));
    assert_eq!(os.close(fd), Err(EBADF));
    assert_eq!(
        os.ds_retrieve("other.k").as_deref(),
        Ok("v"),
        "not the suite's"
    );
    let code = suite::run(&mut os, &mut lines, Sections { processes: false });
    assert_eq!(code, 0, "{:?}", lines.0);
}

#[test]
fn suite_prints_failures_and_the_summary() {
    // Without DS, every DS check fails with ENOSYS; the summary counts them.
    let mut os = suite_app(
        Local::new(),
        Servers {
            pm: None,
            vfs: Some(VFS),
            ds: None,
            mm: Some(MM),
        },
    );
    let mut lines = Lines::default();
    assert_eq!(
        suite::run(&mut os, &mut lines, Sections { processes: false }),
        1
    );
    assert!(
        lines
            .0
            .iter()
            .any(|l| l == "suite: FAIL ds publish errno 38"),
        "{:?}",
        lines.0
    );
    let last = lines.0.last().unwrap();
    let failed = lines.0.len() - 2;
    assert_eq!(
        lines.0[failed],
        format!("suite: {failed} failed, 0 of them after ERESTART; 0 ERESTART answers")
    );
    assert!(
        last.ends_with(&format!(" passed, {failed} failed")),
        "{last}"
    );
}

#[test]
fn init_reads_its_jobs() {
    assert_eq!(parse_jobs(b"/bin/suite\n"), [vec!["/bin/suite"]]);
    assert_eq!(
        parse_jobs(b"/bin/flood\n/bin/suite\n"),
        [vec!["/bin/flood"], vec!["/bin/suite"]]
    );
    assert_eq!(
        parse_jobs(b"  /bin/suite  extra\n\nsuite\n/bin/x"),
        [vec!["/bin/suite", "extra"], vec!["/bin/x"]]
    );
    assert!(parse_jobs(b"").is_empty());
    assert!(parse_jobs(b"/bin/\xff").is_empty());
    assert!(parse_jobs(format!("/{}", "x".repeat(300)).as_bytes()).is_empty());
}

/// Runs `ubench`'s workloads named in `only` (all when empty) without processes, on a
/// small budget; returns its code, its lines and its marks.
fn bench(only: &[&str]) -> (u32, Vec<String>, u32) {
    let mut os = app();
    let mut marks = 0;
    let mut mark = || marks += 1;
    let mut lines = Lines::default();
    let budget = Budget {
        syscall: 3,
        pipe: 5,
        context: 0,
        spawn: 0,
        copy_blocks: 100,
        ds: 7,
    };
    let code = Bench {
        os: &mut os,
        mark: &mut mark,
        out: &mut lines,
        processes: false,
    }
    .run(&budget, only);
    (code, lines.0, marks)
}

#[test]
fn bench_workloads_without_processes_run_and_mark_each() {
    let (code, lines, marks) = bench(&[]);
    // syscall fails here: no PM in the harness.
    assert_eq!(code, 1);
    assert_eq!(
        lines,
        [
            "ubench: syscall failed errno 38",
            "ubench: pipe 5",
            "ubench: fcopy-1k 100",
            "ubench: fcopy-4k 100",
            "ubench: ds-lookup 7",
        ]
    );
    assert_eq!(marks, 2 * 5);
}

#[test]
fn bench_runs_the_workloads_it_is_given_in_their_order() {
    let (code, lines, marks) = bench(&["ds-lookup", "pipe", "pipe", "no-such-workload"]);
    assert_eq!(code, 1, "an unknown workload fails");
    assert_eq!(
        lines,
        [
            "ubench: ds-lookup 7",
            "ubench: pipe 5",
            "ubench: pipe 5",
            "ubench: no-such-workload is not a workload"
        ]
    );
    assert_eq!(marks, 2 * 3);
}

#[test]
fn flood_leaves_the_servers_working() {
    let mut os = app();
    let mut lines = Lines::default();
    let code = crate::flood::run(&mut os, &mut lines, 2000);
    // No PM in the harness: getpid fails, the others must still work.
    assert_eq!(
        lines.0[1..],
        ["flood: FAIL pm stopped working", "flood: done"],
        "{:?}",
        lines.0
    );
    assert_eq!(code, 1);
    assert!(lines.0[0].starts_with("flood: 2000 requests, "));
}
