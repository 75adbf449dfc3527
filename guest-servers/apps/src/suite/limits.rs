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
pub(super) fn enfile<C: Channel>(os: &mut Os<C>, check: &mut Checker<'_>) {
    let Some((ready_r, ready_w)) = check.ok("enfile ready pipe", os.pipe()) else {
        return;
    };
    let Some((block_r, block_w)) = check.ok("enfile block pipe", os.pipe()) else {
        return;
    };
    let args = [ready_w, block_r].map(|fd| u64::try_from(fd).unwrap_or(u64::MAX));
    let mut hogs: Vec<Pid> = Vec::new();
    let mut hit = false;
    if check.ok("enfile args", os.pass_args(&args)).is_some() {
        while hogs.len() < HOGS_MAX && !hit {
            // When the table fills up exactly as a hog reaches its own limit, the next
            // spawn is what meets ENFILE: PM cannot open the program.
            let pid = match os.spawn(CHILD_HOG, &["child-hog"], true) {
                Ok(pid) => pid,
                Err(errno) => {
                    hit = errno == ENFILE;
                    break;
                }
            };
            hogs.push(pid);
            let mut byte = [0u8; 1];
            match os.read(ready_r, &mut byte) {
                Ok(1) => hit = i32::from(byte[0]) == ENFILE,
                _ => break,
            }
        }
    }
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
    for fd in [ready_r, ready_w, block_r, block_w] {
        let _ = os.close(fd);
    }
}
