//! `hostile`: an unprivileged program that tries to take more than its share of the
//! servers while other programs (the suite) run. Its first argument picks the attack:
//!
//! - `ds`: fills DS with the largest values until it is refused (`ENOSPC` at its own
//!   quota, far below the store's size), then has children fill theirs one after the
//!   other and exit: their keys must not stay behind (the parent's quota is full, so
//!   DS deletes them);
//! - `kill`: tries to kill every pid up to [`KILL_SCAN`]: nothing may be killed (it
//!   has no descendants), live processes answer `EPERM`;
//! - `orphans`: [`ORPHAN_ROUNDS`] times, spawns a child that spawns a grandchild and
//!   ends at once: the orphans must not fill PM's 64-entry table;
//! - `pipe`: [`PIPE_WRITERS`] children each write 1 MiB to one pipe in a single
//!   write; the parent reads it all (VFS holds at most a pipe buffer of it);
//! - `hoard`: spawns children that never end until PM refuses (a fork bomb that
//!   keeps what it made): PM must answer `EAGAIN` at this program's session share,
//!   `SESSION_PROCS_MAX` entries counting itself, far below its 64-entry table, so
//!   the programs beside it still spawn. Then it kills them and collects them;
//! - `files`: spawns `child-hog` helpers that each open files until VFS refuses,
//!   until one is refused with `ENFILE`: that must come at this program's session
//!   share (`SESSION_NFILE`, half the open-file table), after at most
//!   [`FILE_HOGS_MAX`] helpers, not when the whole table is full;
//! - `memory`: maps memory through MM up to its process limit, and has helpers
//!   (`memory-child`) do the same one after the other until MM answers `ENOMEM`
//!   below a helper's own limit: together they must hold exactly the session's
//!   share (`SESSION_SHARE`, half MM's budget), so the programs beside them still
//!   get memory;
//! - `disk`: writes one file in [`IO_MAX`] pieces until VFS refuses (`ENOSPC`): that
//!   must come at this program's session share of the file system
//!   (`SESSION_SPACE_DIVISOR`: half of it), not when the disk is full, so the
//!   programs beside it can still write. It prints the bytes it wrote, then removes
//!   the file;
//! - `inodes`: makes empty files (no data, an inode each) until VFS refuses
//!   (`ENOSPC`): that must come at the session's share of the inodes (half of them),
//!   not when they are all taken. It prints how many it made, then removes them;
//! - `ds-session`: has helpers (`ds-holder`) publish up to their DS quota and stay
//!   alive until DS refuses one below its quota: that must come at the session's
//!   share (`SESSION_BYTES_MAX`, half the store), and `ds-witness`, run beside it by
//!   init (another session), must still publish up to its own quota meanwhile
//!   ([`ds_session`]).
//!
//! Each attack prints `hostile: <attack> ok <figure>` and exits 0 when it was
//! contained as it should be, else `hostile: <attack> failed <step> <errno>` and
//! exits 1. (`ds-child`, `ds-holder`, `orphan-parent` and `pipe-writer` are the
//! children's parts.)

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use ankh_proto::ds::{entry_cost, OWNER_BYTES_MAX, VALUE_MAX};
use ankh_proto::errno::{Errno, EAGAIN, EINVAL, ENFILE, ENOSPC, EPERM, ESRCH};
use ankh_proto::mm::{PROCESS_LIMIT, SESSION_SHARE, SYSTEM_BUDGET};
use ankh_proto::pm::{PROC_MAX, SESSION_PROCS_MAX};
use ankh_proto::vfs::{IO_MAX, NFILE, OPEN_MAX, SESSION_NFILE};
use ankh_ulib::num::push_dec;
use ankh_ulib::vfs::{O_CREAT, O_TRUNC, O_WRONLY};
use ankh_ulib::{Channel, Fd, Os, Pid};

use crate::helpers::fd_arg;
use crate::out::{Out, Text};
use crate::paths::{CHILD_EXIT3, CHILD_HOG, CHILD_SLEEP};

pub mod ds_session;

/// This program in the root file system.
pub const HOSTILE: &str = "/bin/hostile";
/// `kill` tries every pid from 1 to this.
pub const KILL_SCAN: u32 = 128;
/// `orphans` leaves this many orphans behind (twice PM's table).
pub const ORPHAN_ROUNDS: usize = 2 * PROC_MAX;
/// Children of `ds` that fill their quota, one after the other.
pub const DS_CHILDREN: usize = 4;
/// Most `child-hog` helpers `files` may need before `ENFILE`: each holds at least
/// `OPEN_MAX - 8` files (its inherited descriptors are fewer), so the session share
/// is reached by then; the whole table would take twice as many.
pub const FILE_HOGS_MAX: usize = SESSION_NFILE / (OPEN_MAX - 8) + 1;
/// Children of `pipe`, each writing [`IO_MAX`] bytes.
pub const PIPE_WRITERS: usize = 3;

/// A step that went wrong: what, and the errno (0: not an errno).
type Failure = (&'static str, Errno);

/// Runs the attack its arguments name; the exit status.
pub fn run<C: Channel>(os: &mut Os<C>, out: &mut dyn Out) -> u32 {
    let args = match os.args() {
        Ok(args) => args,
        Err(errno) => {
            Text::new()
                .str("hostile: failed args ")
                .int(i64::from(errno))
                .send(out);
            return 1;
        }
    };
    let attack = args.get(1).map_or("", String::as_str);
    let result = match attack {
        "ds" => ds(os),
        "ds-child" => fill_ds(os).map(|n| n as u64),
        "kill" => kill(os),
        "orphans" => orphans(os),
        "orphan-parent" => spawn_past_enfile(os, CHILD_EXIT3, &["child-exit3"])
            .map(u64::from)
            .map_err(|e| ("spawn grandchild", e)),
        "pipe" => pipe(os),
        "pipe-writer" => pipe_writer(os),
        "hoard" => hoard(os),
        "files" => files(os),
        "memory" => memory(os),
        "memory-child" => memory_child(os),
        "disk" => disk(os),
        "inodes" => inodes(os),
        "ds-session" => ds_session::ds_session(os),
        "ds-holder" => ds_session::ds_holder(os),
        "ds-witness" => ds_session::ds_witness(os),
        _ => Err(("unknown attack", EINVAL)),
    };
    let line = Text::new().str("hostile: ").str(attack);
    match result {
        Ok(figure) => {
            line.str(" ok ").dec(figure).send(out);
            0
        }
        Err((step, errno)) => {
            line.str(" failed ")
                .str(step)
                .str(" ")
                .int(i64::from(errno))
                .send(out);
            1
        }
    }
}

/// `hostile.<pid>.<n>`.
fn key(pid: u32, n: usize) -> String {
    let mut key = Vec::from(&b"hostile."[..]);
    push_dec(&mut key, u64::from(pid));
    key.push(b'.');
    push_dec(&mut key, u64::try_from(n).unwrap_or(u64::MAX));
    String::from_utf8(key).unwrap_or_default()
}

/// Publishes the largest values until DS says `ENOSPC`; how many it took, which must
/// fit this process's byte quota.
fn fill_ds<C: Channel>(os: &mut Os<C>) -> Result<usize, Failure> {
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    let value = String::from_utf8(vec![b'x'; VALUE_MAX]).unwrap_or_default();
    let mut taken = 0;
    loop {
        let key = key(me, taken);
        match os.ds_publish(&key, &value) {
            Ok(()) => taken += 1,
            Err(ENOSPC) => break,
            Err(errno) => return Err(("publish", errno)),
        }
        if taken * entry_cost(key.len(), VALUE_MAX) > OWNER_BYTES_MAX {
            return Err(("over the quota", 0));
        }
    }
    if taken == 0 {
        return Err(("nothing published", 0));
    }
    Ok(taken)
}

/// The `ds` attack; the number of keys it holds at the end.
fn ds<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let taken = fill_ds(os)?;
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    for _ in 0..DS_CHILDREN {
        let child = os
            .spawn(HOSTILE, &["hostile", "ds-child"], false)
            .map_err(|e| ("spawn", e))?;
        let status = os.wait(child).map_err(|e| ("wait", e))?;
        if status.code != 0 || status.cause != 0 {
            return Err(("child failed", status.code));
        }
        // Its keys went with it: this process's quota had no room for them.
        let mut prefix = key(child, 0);
        prefix.pop();
        let left = os.ds_list(&prefix).map_err(|e| ("list", e))?;
        if !left.is_empty() {
            return Err(("a child's keys stayed", 0));
        }
    }
    let mut prefix = key(me, 0);
    prefix.pop();
    let left = os.ds_list(&prefix).map_err(|e| ("list", e))?;
    let mine = (0..taken).map(|n| key(me, n));
    if left.len() != taken || !mine.clone().all(|k| left.contains(&k)) {
        return Err(("own keys changed", 0));
    }
    for key in mine {
        os.ds_delete(&key).map_err(|e| ("delete", e))?;
    }
    Ok(u64::try_from(taken).unwrap_or(u64::MAX))
}

/// The `kill` attack; how many live processes refused it.
fn kill<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let mut refused = 0;
    for pid in 1..=KILL_SCAN {
        match os.kill(pid) {
            Ok(()) => return Err(("killed a stranger", 0)),
            Err(EPERM) => refused += 1,
            Err(ESRCH) => {}
            Err(errno) => return Err(("kill", errno)),
        }
    }
    // At least init and this process itself are alive and not ours to kill.
    if refused < 2 {
        return Err(("too few refusals", 0));
    }
    Ok(refused)
}

/// The `hoard` attack; the children it held when PM refused the next one.
fn hoard<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let mut children = Vec::new();
    let refusal = loop {
        // Twice the table: without a share per session the loop ends at PROC_MAX.
        if children.len() > 2 * PROC_MAX {
            break 0;
        }
        match spawn_past_enfile(os, CHILD_SLEEP, &["child-sleep"]) {
            Ok(pid) => children.push(pid),
            Err(errno) => break errno,
        }
    };
    let held = children.len();
    end_helpers(os, &children, [])?;
    if refusal != EAGAIN {
        return Err(("refusal", refusal));
    }
    // This program is its session's root: it holds one entry itself.
    if held + 1 != SESSION_PROCS_MAX {
        return Err((
            "refused at a count other than the share",
            i32::try_from(held).unwrap_or(i32::MAX),
        ));
    }
    Ok(u64::try_from(held).unwrap_or(u64::MAX))
}

/// Kills and collects an attack's helpers, then closes its descriptors.
fn end_helpers<C: Channel, const N: usize>(
    os: &mut Os<C>,
    helpers: &[Pid],
    fds: [Fd; N],
) -> Result<(), Failure> {
    for &pid in helpers {
        os.kill(pid).map_err(|e| ("kill", e))?;
        os.wait(pid).map_err(|e| ("wait", e))?;
    }
    for fd in fds {
        os.close(fd).map_err(|e| ("close", e))?;
    }
    Ok(())
}

/// Two pipes for an attack's helpers, their ends passed to them as arguments: they
/// report on the first (`ready`) and block reading the second (`block`), whose
/// writers never write. Returns `[ready_r, ready_w, block_r, block_w]`.
fn helper_pipes<C: Channel>(os: &mut Os<C>) -> Result<[Fd; 4], Failure> {
    let (ready_r, ready_w) = os.pipe().map_err(|e| ("pipe", e))?;
    let (block_r, block_w) = os.pipe().map_err(|e| ("pipe", e))?;
    let args = [ready_w, block_r].map(|fd| u64::try_from(fd).unwrap_or(u64::MAX));
    os.pass_args(&args).map_err(|e| ("pass args", e))?;
    Ok([ready_r, ready_w, block_r, block_w])
}

/// The `files` attack; the helpers it took to be refused.
fn files<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let [ready_r, ready_w, block_r, block_w] = helper_pipes(os)?;
    let mut hogs = Vec::new();
    let mut refusal = 0;
    // Enough helpers to fill the whole table, should the share not hold.
    while refusal != ENFILE && hogs.len() < NFILE / (OPEN_MAX - 8) + 2 {
        match os.spawn(CHILD_HOG, &["child-hog"], true) {
            Ok(pid) => hogs.push(pid),
            Err(errno) => return Err(("spawn", errno)),
        }
        let mut byte = [0u8; 1];
        os.read(ready_r, &mut byte).map_err(|e| ("read", e))?;
        refusal = i32::from(byte[0]);
    }
    let needed = hogs.len();
    end_helpers(os, &hogs, [ready_r, ready_w, block_r, block_w])?;
    if refusal != ENFILE {
        return Err(("refusal", refusal));
    }
    if needed > FILE_HOGS_MAX {
        return Err((
            "refused beyond the session share",
            i32::try_from(needed).unwrap_or(i32::MAX),
        ));
    }
    Ok(u64::try_from(needed).unwrap_or(u64::MAX))
}

/// Maps 1 MiB regions until MM refuses (or past its whole budget); the bytes mapped.
fn map_until_refused<C: Channel>(os: &mut Os<C>) -> u64 {
    let mut mapped = 0;
    while mapped <= SYSTEM_BUDGET {
        match os.map(MIB) {
            Ok(region) => mapped += region.len,
            Err(_) => break,
        }
    }
    mapped
}

/// A mebibyte.
const MIB: u64 = 1 << 20;

/// The `memory` attack; the bytes its session held when MM refused.
fn memory<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let [ready_r, ready_w, block_r, block_w] = helper_pipes(os)?;
    let mut held = map_until_refused(os);
    let mut helpers = Vec::new();
    // Enough helpers to take the whole budget, should the share not hold.
    let mut short = false;
    while !short && helpers.len() < usize::try_from(SYSTEM_BUDGET / PROCESS_LIMIT).unwrap_or(0) {
        let pid = os
            .spawn(HOSTILE, &["hostile", "memory-child"], true)
            .map_err(|e| ("spawn", e))?;
        helpers.push(pid);
        let mut report = [0u8; 8];
        let mut got = 0;
        while got < report.len() {
            got += os
                .read(ready_r, &mut report[got..])
                .map_err(|e| ("read", e))?;
        }
        let mapped = u64::from_le_bytes(report);
        held += mapped;
        short = mapped < PROCESS_LIMIT;
    }
    end_helpers(os, &helpers, [ready_r, ready_w, block_r, block_w])?;
    if held != SESSION_SHARE {
        return Err((
            "held other than the session share (MiB)",
            i32::try_from(held / MIB).unwrap_or(i32::MAX),
        ));
    }
    Ok(held)
}

/// `memory-child`: maps until refused, reports the bytes (8 bytes, little endian) to
/// its parent's pipe and blocks until killed.
fn memory_child<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let args = os.parent_args().map_err(|e| ("parent args", e))?;
    let fd = |index| fd_arg(&args, index).ok_or(("args", EINVAL));
    let (ready, block) = (fd(0)?, fd(1)?);
    let mapped = map_until_refused(os);
    // ulib's write sends the rest of a short pipe write until all of it is in.
    os.write(ready, &mapped.to_le_bytes())
        .map_err(|e| ("write", e))?;
    let _ = os.read(block, &mut [0u8; 1]);
    Err(("woken", 0))
}

/// The `disk` attack; the bytes it wrote before VFS refused.
fn disk<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    let mut path = Vec::from(&b"/hostile-disk."[..]);
    push_dec(&mut path, u64::from(me));
    let path = String::from_utf8(path).unwrap_or_default();
    let fd = os
        .open(&path, O_CREAT | O_TRUNC | O_WRONLY)
        .map_err(|e| ("open", e))?;
    let chunk = vec![0x5a_u8; IO_MAX];
    let mut written = 0u64;
    let refused = loop {
        match os.write(fd, &chunk) {
            Ok(0) => break ("a write of nothing", 0),
            // A short write, at the share; the next one is refused.
            Ok(n) => written += n as u64,
            Err(errno) => break ("write", errno),
        }
    };
    let _ = os.close(fd);
    os.unlink(&path).map_err(|e| ("unlink", e))?;
    match refused {
        (_, ENOSPC) => Ok(written),
        other => Err(other),
    }
}

/// `/hostile-inodes.<pid>.<n>`.
fn inode_path(pid: Pid, n: u64) -> String {
    let mut path = Vec::from(&b"/hostile-inodes."[..]);
    push_dec(&mut path, u64::from(pid));
    path.push(b'.');
    push_dec(&mut path, n);
    String::from_utf8(path).unwrap_or_default()
}

/// The `inodes` attack; the files it made before VFS refused.
fn inodes<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let me = os.getpid().map_err(|e| ("getpid", e))?;
    let mut made = 0u64;
    let refused = loop {
        match os.open(&inode_path(me, made), O_CREAT | O_WRONLY) {
            Ok(fd) => {
                let _ = os.close(fd);
                made += 1;
            }
            Err(errno) => break ("open", errno),
        }
    };
    for n in 0..made {
        os.unlink(&inode_path(me, n)).map_err(|e| ("unlink", e))?;
    }
    match refused {
        (_, ENOSPC) => Ok(made),
        other => Err(other),
    }
}

/// Most times [`spawn_past_enfile`] asks again.
const ENFILE_RETRIES: usize = 20_000;

/// Spawns `path`, asking again while VFS's open-file table is full (`ENFILE`, when
/// loading the program): the suite, which these attacks run beside, fills that table
/// on purpose in its `ENFILE` check, and a spawn refused meanwhile is the system doing
/// its job, not what the attack tests (PM's table). Each retry is a call to PM, which
/// gives the suite's programs turns to release their files.
fn spawn_past_enfile<C: Channel>(os: &mut Os<C>, path: &str, args: &[&str]) -> Result<u32, Errno> {
    let mut tries = 0;
    loop {
        match os.spawn(path, args, false) {
            Err(ENFILE) if tries < ENFILE_RETRIES => {
                tries += 1;
                os.getpid()?;
            }
            other => return other,
        }
    }
}

/// The `orphans` attack; the rounds it made.
fn orphans<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    for _ in 0..ORPHAN_ROUNDS {
        let parent = spawn_past_enfile(os, HOSTILE, &["hostile", "orphan-parent"])
            .map_err(|e| ("spawn", e))?;
        let status = os.wait(parent).map_err(|e| ("wait", e))?;
        if status.code != 0 || status.cause != 0 {
            return Err(("orphan parent failed", status.code));
        }
    }
    Ok(u64::try_from(ORPHAN_ROUNDS).unwrap_or(u64::MAX))
}

/// The byte a pipe writer puts at `index`.
fn pattern(index: usize) -> u8 {
    u8::try_from(index % 251).unwrap_or(0)
}

/// The `pipe` attack; the bytes read.
fn pipe<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let (r, w) = os.pipe().map_err(|e| ("pipe", e))?;
    let w_arg = u64::try_from(w).map_err(|_| ("descriptor", EINVAL))?;
    os.pass_args(&[w_arg]).map_err(|e| ("pass args", e))?;
    let mut writers = Vec::new();
    for _ in 0..PIPE_WRITERS {
        let pid = os
            .spawn(HOSTILE, &["hostile", "pipe-writer"], true)
            .map_err(|e| ("spawn", e))?;
        writers.push(pid);
    }
    os.close(w).map_err(|e| ("close", e))?;
    let mut buf = vec![0u8; 64 << 10];
    let (mut total, mut sum) = (0usize, 0u64);
    loop {
        let n = os.read(r, &mut buf).map_err(|e| ("read", e))?;
        if n == 0 {
            break;
        }
        total += n;
        sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    for pid in writers {
        let status = os.wait(pid).map_err(|e| ("wait", e))?;
        if status.code != 0 || status.cause != 0 {
            return Err(("writer failed", status.code));
        }
    }
    let one: u64 = (0..IO_MAX).map(|i| u64::from(pattern(i))).sum();
    let writers = u64::try_from(PIPE_WRITERS).unwrap_or(0);
    if total != PIPE_WRITERS * IO_MAX || sum != writers * one {
        return Err(("bytes lost", 0));
    }
    Ok(u64::try_from(total).unwrap_or(u64::MAX))
}

/// A `pipe` child: one write of `IO_MAX` bytes to the descriptor its parent passed.
fn pipe_writer<C: Channel>(os: &mut Os<C>) -> Result<u64, Failure> {
    let args = os.parent_args().map_err(|e| ("args", e))?;
    let fd = args
        .first()
        .and_then(|&fd| i32::try_from(fd).ok())
        .ok_or(("args", EINVAL))?;
    let data: Vec<u8> = (0..IO_MAX).map(pattern).collect();
    let written = os.write(fd, &data).map_err(|e| ("write", e))?;
    if written != data.len() {
        return Err(("short write", 0));
    }
    Ok(u64::try_from(written).unwrap_or(u64::MAX))
}
