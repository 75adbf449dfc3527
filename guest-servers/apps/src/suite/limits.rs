//! Descriptor limits: `EMFILE` per process, `ENFILE` for the system (the suite's
//! helpers reach its session's share of the open-file table, or the table's end).

use alloc::vec::Vec;

use ankh_proto::pm::WaitStatus;
use ankh_proto::sys::EXIT_KILLED;
use ankh_proto::vfs::{NFILE, OPEN_MAX};
use ankh_ulib::errno::{EMFILE, ENFILE};
use ankh_ulib::vfs::O_RDONLY;
use ankh_ulib::{Channel, Os, Pid};

use crate::check::Checker;
use crate::helpers::HOG_FILE;
use crate::paths::CHILD_HOG;

/// Opens `/` until refused: `EMFILE` after at most `OPEN_MAX` descriptors; closing
/// them makes room again.
pub(super) fn emfile<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let mut fds = Vec::new();
    let mut refused = 0;
    while fds.len() <= OPEN_MAX {
        match os.open("/", O_RDONLY) {
            Ok(fd) => fds.push(fd),
            Err(errno) => {
                refused = errno;
                break;
            }
        }
    }
    check.eq("emfile", refused.into(), EMFILE.into());
    check.check(
        "emfile at open max",
        fds.len() <= OPEN_MAX && fds.len() + 4 >= OPEN_MAX,
    );
    let mut closed = 0;
    for fd in fds.drain(..) {
        if os.close(fd).is_ok() {
            closed += 1;
        }
    }
    check.check("emfile closes", closed + 4 >= OPEN_MAX);
    if let Some(fd) = check.ok("open after emfile", os.open("/", O_RDONLY)) {
        let _ = os.close(fd);
    }
}

/// Most hogs the suite starts (each holds up to `OPEN_MAX` open files).
const HOGS_MAX: usize = NFILE / (OPEN_MAX - 4) + 2;

/// Fills the system's open-file table with `child-hog` processes until one of them
/// gets `ENFILE` (or the spawn of the next one does: PM opens the program as well);
/// then the suite gets `ENFILE` too, and killing the hogs frees the table again.
///
/// Each hog reports on a pipe of its own, whose write end only that hog holds once
/// the suite has closed its copy: a hog that ends without writing (its write answered
/// `ERESTART` until it gave up, in a kill storm) ends the suite's read with end of
/// file. With one pipe for all, which every blocked hog keeps open, the suite waited
/// for ever.
pub(super) fn enfile<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some((block_r, block_w)) = check.ok("enfile block pipe", os.pipe()) else {
        return;
    };
    let mut hogs: Vec<Pid> = Vec::new();
    let mut hit = false;
    // Every hog got its pipe and its arguments; every hog spawned reported.
    let (mut set_up, mut reported) = (true, true);
    while hogs.len() < HOGS_MAX && !hit {
        let (ready_r, ready_w) = match os.pipe() {
            Ok(ends) => ends,
            Err(errno) => {
                // The table may fill up with the hogs' pipes as well.
                hit = errno == ENFILE;
                set_up = hit;
                break;
            }
        };
        let args = [ready_w, block_r].map(|fd| u64::try_from(fd).unwrap_or(u64::MAX));
        let spawned = match os.pass_args(&args) {
            Ok(()) => os.spawn(CHILD_HOG, &["child-hog"], true),
            Err(errno) => {
                set_up = false;
                Err(errno)
            }
        };
        // Only the hog holds the write end from here (when the close fails, a read
        // could wait for ever: the round ends instead).
        let closed = os.close(ready_w).is_ok();
        let mut report = None;
        match spawned {
            Ok(pid) => {
                hogs.push(pid);
                let mut byte = [0u8; 1];
                if closed {
                    report = Some(os.read(ready_r, &mut byte).map(|n| (n, byte[0])));
                }
            }
            // When the table fills up exactly as a hog reaches its own limit, the next
            // spawn is what meets ENFILE: PM cannot open the program.
            Err(errno) => hit = errno == ENFILE,
        }
        let _ = os.close(ready_r);
        match report {
            Some(Ok((1, byte))) => hit = i32::from(byte) == ENFILE,
            Some(_) => {
                reported = false;
                break;
            }
            None => {
                reported &= hit;
                break;
            }
        }
    }
    check.check("enfile ready pipes", set_up);
    check.check("enfile hogs report", reported);
    check.check("enfile reached", hit);
    if hit {
        check.err(
            "enfile for the suite too",
            os.open(HOG_FILE, O_RDONLY),
            ENFILE,
        );
    }
    let mut killed = 0usize;
    for &pid in &hogs {
        let _ = os.kill(pid);
        if matches!(
            os.wait(pid),
            Ok(WaitStatus {
                cause: EXIT_KILLED,
                ..
            })
        ) {
            killed += 1;
        }
    }
    check.eq(
        "enfile hogs killed",
        i64::try_from(killed).unwrap_or(-1),
        i64::try_from(hogs.len()).unwrap_or(-1),
    );
    if let Some(fd) = check.ok("open after enfile", os.open(HOG_FILE, O_RDONLY)) {
        let _ = os.close(fd);
    }
    for fd in [block_r, block_w] {
        let _ = os.close(fd);
    }
}
