//! The helper programs the suite and the benchmark spawn, as functions over
//! `ankh_ulib::Os` (their images in `src/bin/` only call these).
//!
//! Descriptor numbers reach a helper through `ankh_ulib::args` (DS key
//! `args.<parent pid>`), published by the parent before the spawn.

use ankh_ulib::{Channel, Fd, Os};

use crate::paths::{pipe_child, SUBSCRIBE_ACK, SUBSCRIBE_PREFIX};

/// The argument `index` as a descriptor.
pub(crate) fn fd_arg(args: &[u64], index: usize) -> Option<Fd> {
    args.get(index).and_then(|&value| Fd::try_from(value).ok())
}

/// `pipe-child`: arguments `[in_read, in_write, out_read, out_write]` (two pipes the
/// parent made and the child inherited). Closes the ends it does not use (so end of file
/// can happen), then copies `in_read` to `out_write` until end of file. Returns its exit
/// code: 0, or one of [`crate::paths::pipe_child`].
pub fn pipe_child<C: Channel>(os: &mut Os<C>) -> u32 {
    let Ok(args) = os.parent_args() else {
        return pipe_child::NO_ARGS;
    };
    let (Some(input), Some(in_write), Some(out_read), Some(output)) = (
        fd_arg(&args, 0),
        fd_arg(&args, 1),
        fd_arg(&args, 2),
        fd_arg(&args, 3),
    ) else {
        return pipe_child::NO_ARGS;
    };
    // Without inherited descriptors these fail; the read below says so.
    let _ = os.close(in_write);
    let _ = os.close(out_read);
    let mut buf = [0u8; 512];
    loop {
        let n = match os.read(input, &mut buf) {
            Ok(0) => return 0,
            Ok(n) => n,
            Err(_) => return pipe_child::READ_FAILED,
        };
        let mut done = 0;
        while done < n {
            match os.write(output, &buf[done..n]) {
                Ok(0) | Err(_) => return pipe_child::WRITE_FAILED,
                Ok(written) => done += written,
            }
        }
    }
}

/// The file `child-hog` opens again and again (it exists: it is the hog itself).
pub const HOG_FILE: &str = crate::paths::CHILD_HOG;

/// `child-hog`: arguments `[ready_write, block_read]`. Opens [`HOG_FILE`] until VFS
/// refuses, writes that errno as one byte to `ready_write`, then reads `block_read`
/// (whose writers never write) forever. Returns 1 if anything else happens.
pub fn hog<C: Channel>(os: &mut Os<C>) -> u32 {
    let Ok(args) = os.parent_args() else {
        return 1;
    };
    let (Some(ready), Some(block)) = (fd_arg(&args, 0), fd_arg(&args, 1)) else {
        return 1;
    };
    let mut errno = 0;
    for _ in 0..OPEN_ATTEMPTS {
        if let Err(refused) = os.open(HOG_FILE, ankh_ulib::vfs::O_RDONLY) {
            errno = refused;
            break;
        }
    }
    let byte = u8::try_from(errno).unwrap_or(u8::MAX);
    if os.write(ready, &[byte]).is_err() {
        return 1;
    }
    let _ = os.read(block, &mut [0u8; 1]);
    1
}

/// How often the hog tries: more opens than any process may hold (`OPEN_MAX`).
const OPEN_ATTEMPTS: usize = ankh_proto::vfs::OPEN_MAX + 8;

/// `child-subscribe`: subscribes to [`SUBSCRIBE_PREFIX`]; when woken, publishes the key
/// it got under [`SUBSCRIBE_ACK`]. Returns 0, or 1 when a call fails.
pub fn subscriber<C: Channel>(os: &mut Os<C>) -> u32 {
    let Ok(key) = os.ds_subscribe(SUBSCRIBE_PREFIX) else {
        return 1;
    };
    match os.ds_publish(SUBSCRIBE_ACK, &key) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}
