//! The storage workloads of `disk-bench` (`ankh bench storage`): sequential and random
//! reads and writes of one file through VFS and the disk driver, each bracketed by two
//! marks the host timestamps, each printed as `disk-bench: <name> <bytes>`.
//!
//! The sizes and the offsets are `ankh_proto::diskbench`'s.
//!
//! - `seq-write`: 16 MiB in 1 MiB writes, then `fsync` (in the timing);
//! - `seq-read`: the file back in 1 MiB reads (larger than VFS's block cache, so most
//!   of it comes from the disk);
//! - `rand-write`: 2048 4 KiB `pwrite`s at block-aligned offsets from a fixed
//!   sequence, then `fsync`;
//! - `rand-read`: 2048 4 KiB `pread`s likewise.

use alloc::vec;

use ankh_proto::diskbench::{random_offset, FILE_SIZE, RANDOM_CHUNK, RANDOM_OPS, SEQ_CHUNK};
use ankh_proto::errno::Errno;
use ankh_ulib::vfs::{O_CREAT, O_RDONLY, O_RDWR, O_TRUNC};
use ankh_ulib::{Channel, Os};

use crate::out::{Out, Text};

/// The file the workloads use.
pub const PATH: &str = "/disk-bench.dat";

/// Runs every workload; 0 iff all worked.
pub fn run<C: Channel>(os: &mut Os<C>, mark: &mut dyn FnMut(), out: &mut dyn Out) -> u32 {
    let mut failed = false;
    let mut buf = vec![0x5au8; SEQ_CHUNK];
    let mut report = |name: &str, result: Result<u64, Errno>, out: &mut dyn Out| {
        let line = Text::new().str("disk-bench: ").str(name).str(" ");
        match result {
            Ok(bytes) => line.dec(bytes).send(out),
            Err(errno) => {
                failed = true;
                line.str("failed errno ").int(errno.into()).send(out);
            }
        }
    };

    mark();
    let result = seq_write(os, &buf);
    mark();
    report("seq-write", result, out);

    mark();
    let result = seq_read(os, &mut buf);
    mark();
    report("seq-read", result, out);

    mark();
    let result = random(os, &mut buf[..RANDOM_CHUNK], true);
    mark();
    report("rand-write", result, out);

    mark();
    let result = random(os, &mut buf[..RANDOM_CHUNK], false);
    mark();
    report("rand-read", result, out);

    let _ = os.unlink(PATH);
    u32::from(failed)
}

fn seq_write<C: Channel>(os: &mut Os<C>, chunk: &[u8]) -> Result<u64, Errno> {
    let fd = os.open(PATH, O_RDWR | O_CREAT | O_TRUNC)?;
    let mut written = 0;
    let mut result = Ok(());
    while written < FILE_SIZE && result.is_ok() {
        result = os.write(fd, chunk).map(|n| written += n);
    }
    let result = result.and_then(|()| os.fsync(fd));
    os.close(fd)?;
    result.map(|()| written as u64)
}

fn seq_read<C: Channel>(os: &mut Os<C>, buf: &mut [u8]) -> Result<u64, Errno> {
    let fd = os.open(PATH, O_RDONLY)?;
    let mut read = 0;
    let result = loop {
        match os.read(fd, buf) {
            Ok(0) => break Ok(()),
            Ok(n) => read += n,
            Err(errno) => break Err(errno),
        }
    };
    os.close(fd)?;
    result.map(|()| read as u64)
}

fn random<C: Channel>(os: &mut Os<C>, buf: &mut [u8], write: bool) -> Result<u64, Errno> {
    let fd = os.open(PATH, O_RDWR)?;
    let mut moved = 0;
    let mut result = Ok(());
    for i in 0..RANDOM_OPS {
        let at = random_offset(i);
        let done = if write {
            os.pwrite(fd, buf, at)
        } else {
            os.pread(fd, buf, at)
        };
        match done {
            Ok(n) => moved += n as u64,
            Err(errno) => {
                result = Err(errno);
                break;
            }
        }
    }
    if write && result.is_ok() {
        result = os.fsync(fd);
    }
    os.close(fd)?;
    result.map(|()| moved)
}
