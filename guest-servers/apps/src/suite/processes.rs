//! Processes (PM with VFS and DS): spawn, wait, kill, ps, pipes between parent and
//! child, descriptor inheritance, and a DS subscription woken across processes.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::opcode::{DS_LIST, PM_KILL, PM_WAIT, VFS_PIPE};
use ankh_proto::pm::{ProcEntry, WaitStatus, ARG_MAX, STATE_RUNNING, STATE_ZOMBIE};
use ankh_proto::sys::{EXIT_FAULT, EXIT_KILLED, EXIT_NORMAL};
use ankh_ulib::errno::{E2BIG, ECHILD, EINVAL, ENAMETOOLONG, ENOENT, ENOEXEC, ENOSYS, ESRCH};
use ankh_ulib::vfs::{O_CREAT, O_WRONLY};
use ankh_ulib::{Channel, Fd, Os, Pid, Server};

use crate::check::Checker;
use crate::paths::{
    pipe_child, CHILD_ARGS, CHILD_ARGS_ARGV, CHILD_EXIT3, CHILD_EXIT3_CODE, CHILD_SLEEP,
    CHILD_SUBSCRIBE, CHILD_UD2, PIPE_CHILD, SUBSCRIBE_ACK,
};

/// Runs the section.
pub(super) fn run<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    identity(os, check);
    arguments(os, check);
    pm_guards(os, check);
    exits(os, check);
    deaths(os, check);
    spawn_errors(os, check);
    pipe_to_child(os, check);
    no_inheritance(os, check);
    subscription(os, check);
}

/// A spawned child reads exactly the argv its parent gave.
fn arguments<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let own = os.args();
    check.check("own args readable", own.is_ok());
    let Some(pid) = check.ok(
        "spawn child-args",
        os.spawn(CHILD_ARGS, &CHILD_ARGS_ARGV, false),
    ) else {
        return;
    };
    let status = check.ok("wait child-args", os.wait(pid));
    let argc = i32::try_from(CHILD_ARGS_ARGV.len()).unwrap_or(0);
    check_exit(check, "child got its argv", status, pid, argc);
}

/// The entry of `pid` in the process table, if listed.
fn entry<C: Channel>(os: &mut Os<C>, pid: Pid) -> Option<ProcEntry> {
    os.ps().ok()?.into_iter().find(|entry| entry.pid == pid)
}

/// Whether `status` is a normal exit of `pid` with `code`.
fn exited(status: WaitStatus, pid: Pid, code: i32) -> bool {
    status.pid == pid && status.cause == EXIT_NORMAL && status.code == code
}

/// Checks that `status` says `pid` exited normally with `code`, when the wait that
/// should have given it succeeded: a failed wait is that check's failure already
/// (an `ERESTART` it got is counted there), not a second one here.
fn check_exit(
    check: &mut Checker<'_>,
    name: &str,
    status: Option<WaitStatus>,
    pid: Pid,
    code: i32,
) {
    if let Some(status) = status {
        check.check(name, exited(status, pid, code));
    }
}

/// Malformed and misdirected requests to PM.
fn pm_guards<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    check.err(
        "pm short wait",
        os.call(Server::Pm, PM_WAIT, &[1], &[]),
        EINVAL,
    );
    check.err(
        "pm short kill",
        os.call(Server::Pm, PM_KILL, &[1, 2], &[]),
        EINVAL,
    );
    check.err(
        "ds opcode to pm",
        os.call(Server::Pm, DS_LIST, &[], b"\0"),
        ENOSYS,
    );
    check.err(
        "vfs opcode to pm",
        os.call(Server::Pm, VFS_PIPE, &[], &[]),
        ENOSYS,
    );
}

/// getpid, getppid, ps.
fn identity<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let me = check.ok("getpid", os.getpid()).unwrap_or(0);
    let parent = check.ok("getppid", os.getppid()).unwrap_or(0);
    check.check("pid differs from parent", me != 0 && me != parent);
    check.ok_eq("getpid stable", os.getpid(), me);
    let listed = entry(os, me);
    check.check(
        "ps lists us running under our parent",
        listed.is_some_and(|e| e.ppid == parent && e.state == STATE_RUNNING),
    );
}

/// Spawns `path` and waits for it; the status if both worked.
fn run_child<C: Channel>(
    os: &mut Os<C>,
    check: &mut Checker<'_>,
    name: &str,
    path: &str,
) -> Option<(Pid, WaitStatus)> {
    let pid = check.ok(name, os.spawn(path, &[path], false))?;
    let status = check.ok(name, os.wait(pid))?;
    Some((pid, status))
}

/// Exit codes reach the parent; a child is waited for once.
fn exits<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    if let Some(pid) = check.ok(
        "spawn exit3",
        os.spawn(CHILD_EXIT3, &["child-exit3"], false),
    ) {
        // A failed getpid fails the check (no pid stands in for it).
        let me = os.getpid().ok();
        let listed = entry(os, pid);
        check.check(
            "ps lists the child",
            listed.is_some_and(|e| {
                Some(e.ppid) == me && (e.state == STATE_RUNNING || e.state == STATE_ZOMBIE)
            }),
        );
        let status = check.ok("wait exit3", os.wait(pid));
        check_exit(
            check,
            "exit code reaches parent",
            status,
            pid,
            CHILD_EXIT3_CODE,
        );
        check.err("wait twice", os.wait(pid), ECHILD);
        check.check("waited child leaves ps", entry(os, pid).is_none());
        check.err("kill waited child", os.kill(pid), ESRCH);
    }
    check.err("wait any without children", os.wait_any(), ECHILD);
    if let Some(pid) = check.ok(
        "spawn for wait any",
        os.spawn(CHILD_EXIT3, &["child-exit3"], false),
    ) {
        let status = check.ok("wait any", os.wait_any());
        check_exit(
            check,
            "wait any names the child",
            status,
            pid,
            CHILD_EXIT3_CODE,
        );
    }
    // A failed getppid is this check's error (a made-up pid would hide it).
    let waited = os.getppid().and_then(|parent| os.wait(parent));
    check.err("wait for non-child", waited, ECHILD);
}

/// Faults and kills reach the parent as causes.
fn deaths<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    if let Some((pid, status)) = run_child(os, check, "ud2 child", CHILD_UD2) {
        check.check(
            "fault is reported",
            status.pid == pid && status.cause == EXIT_FAULT,
        );
    }
    if let Some(pid) = check.ok(
        "spawn sleeper",
        os.spawn(CHILD_SLEEP, &["child-sleep"], false),
    ) {
        check.ok("kill sleeper", os.kill(pid));
        let status = check.ok("wait killed", os.wait(pid));
        check.check(
            "kill is reported",
            status.is_some_and(|s| s.pid == pid && s.cause == EXIT_KILLED),
        );
    }
    check.err("kill nobody", os.kill(1_000_000), ESRCH);
}

/// Spawns that must fail, and why.
fn spawn_errors<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    check.err(
        "spawn missing",
        os.spawn("/bin/no-such-program", &[], false),
        ENOENT,
    );
    let not_elf = "/suite-not-elf";
    if let Ok(fd) = os.open(not_elf, O_CREAT | O_WRONLY) {
        let _ = os.write(fd, b"#!/bin/sh\necho not an image\n");
        let _ = os.close(fd);
        check.err("spawn non-image", os.spawn(not_elf, &[], false), ENOEXEC);
        let _ = os.unlink(not_elf);
    }
    check.fails("spawn directory", os.spawn("/bin", &[], false));
    let long_arg = "a".repeat(ARG_MAX + 1);
    check.err(
        "spawn argv too long",
        os.spawn(CHILD_EXIT3, &[&long_arg], false),
        E2BIG,
    );
    let long_path = "/p".repeat(200);
    check.err(
        "spawn path too long",
        os.spawn(&long_path, &[], false),
        ENAMETOOLONG,
    );
}

/// Reads exactly `buf.len()` bytes (fewer only at end of file).
fn read_full<C: Channel>(os: &mut Os<C>, fd: Fd, buf: &mut [u8]) -> usize {
    let mut got = 0;
    while got < buf.len() {
        match os.read(fd, &mut buf[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

/// Two pipes: `[in_read, in_write, out_read, out_write]` as `pipe-child` takes them.
fn child_pipes<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) -> Option<[Fd; 4]> {
    let (in_r, in_w) = check.ok("child pipe in", os.pipe())?;
    let (out_r, out_w) = check.ok("child pipe out", os.pipe())?;
    let fds = [in_r, in_w, out_r, out_w];
    let args = fds.map(|fd| u64::try_from(fd).unwrap_or(u64::MAX));
    check.ok("child args", os.pass_args(&args))?;
    Some(fds)
}

/// `pipe-child` echoes what the parent writes; closing the input ends it normally.
fn pipe_to_child<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some([in_r, in_w, out_r, out_w]) = child_pipes(os, check) else {
        return;
    };
    let Some(pid) = check.ok(
        "spawn pipe-child",
        os.spawn(PIPE_CHILD, &["pipe-child"], true),
    ) else {
        return;
    };
    let _ = os.close(in_r);
    let _ = os.close(out_w);
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 199).to_le_bytes()[0]).collect();
    let messages: [&[u8]; 3] = [b"one", b"two-two", &big];
    let mut all_echoed = true;
    for message in messages {
        let wrote = os.write(in_w, message) == Ok(message.len());
        let mut back = vec![0u8; message.len()];
        let got = read_full(os, out_r, &mut back);
        all_echoed &= wrote && got == message.len() && back == message;
    }
    check.check("child echoes through pipes", all_echoed);
    check.ok("close child input", os.close(in_w));
    check.ok_eq("child output ends", os.read(out_r, &mut [0u8; 8]), 0);
    let status = check.ok("wait pipe-child", os.wait(pid));
    check_exit(check, "pipe-child exits normally", status, pid, 0);
    let _ = os.close(out_r);
}

/// Without inheritance the child cannot use the parent's descriptors.
fn no_inheritance<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some(fds) = child_pipes(os, check) else {
        return;
    };
    if let Some((pid, status)) = run_child(os, check, "uninherited child", PIPE_CHILD) {
        let code = i32::try_from(pipe_child::READ_FAILED).unwrap_or(-1);
        check.check("no inheritance without the flag", exited(status, pid, code));
    }
    for fd in fds {
        let _ = os.close(fd);
    }
}

/// Rounds of publish-and-yield before the subscription test gives up.
const SUBSCRIBE_ROUNDS: usize = 4;

/// The key the suite publishes to wake `child-subscribe`.
const PING_KEY: &str = "suite.sub.ping";

/// A child parked on `DS_SUBSCRIBE` is woken by our publish. The child may subscribe
/// after a publish, so the suite publishes, then yields (spawn and wait of
/// `child-exit3`, which lets every ready domain run), until the child acknowledges.
fn subscription<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let _ = os.ds_delete(SUBSCRIBE_ACK);
    let Some(pid) = check.ok(
        "spawn subscriber",
        os.spawn(CHILD_SUBSCRIBE, &["child-subscribe"], false),
    ) else {
        return;
    };
    let mut ack = None;
    for _ in 0..SUBSCRIBE_ROUNDS {
        let _ = os.ds_publish(PING_KEY, "1");
        if let Ok(key) = os.ds_retrieve(SUBSCRIBE_ACK) {
            ack = Some(key);
            break;
        }
        if let Ok(child) = os.spawn(CHILD_EXIT3, &["child-exit3"], false) {
            let _ = os.wait(child);
        }
        if let Ok(key) = os.ds_retrieve(SUBSCRIBE_ACK) {
            ack = Some(key);
            break;
        }
    }
    check.check(
        "subscription woken by publish",
        ack == Some(String::from(PING_KEY)),
    );
    if ack.is_none() {
        let _ = os.kill(pid);
    }
    let status = check.ok("wait subscriber", os.wait(pid));
    if ack.is_some() {
        check_exit(check, "subscriber exits normally", status, pid, 0);
    }
    let _ = os.ds_delete(SUBSCRIBE_ACK);
    let _ = os.ds_delete(PING_KEY);
}
