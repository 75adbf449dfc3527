//! The durability workload (`disk-writer`, `disk-check`): files of varying sizes with
//! contents that follow from their number, written and made durable one by one, then
//! read back after crashes and restarts.
//!
//! `disk-writer` prints `acked <path> <len>` once a file is durable (its `fsync`
//! returned, or its last write on an `O_SYNC` descriptor did). A call that fails (e.g.
//! `ERESTART` after the file server was recovered mid-request) makes it write the whole
//! file again, up to [`ATTEMPTS`] times. `disk-check` prints `ok <path> <len>` for each
//! file whose contents are exactly what the writer wrote, `missing <path>` or
//! `bad <path> ...` otherwise; a test then requires `ok` for every acked file.

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::{Errno, EEXIST};
use ankh_ulib::vfs::{O_CREAT, O_RDONLY, O_SYNC, O_TRUNC, O_WRONLY};
use ankh_ulib::{Channel, Os};

use crate::out::{Out, Text};

/// Where the files go.
pub const DIR: &str = "/data";
/// How many files.
pub const FILES: u32 = 24;
/// Tries per file.
pub const ATTEMPTS: u32 = 6;
/// Bytes per write call.
const CHUNK: usize = 64 << 10;
/// Bytes per read call (the reply's copy comes from the same small heap).
const READ_CHUNK: usize = 16 << 10;
/// Sizes, in turn: empty, tiny, around block boundaries, several blocks, past the
/// direct blocks of an inode, about a megabyte.
const SIZES: [usize; 8] = [0, 1, 4095, 4097, 20_000, 65_536, 300_001, 1_000_000];

/// The path of file `n`.
pub fn path(n: u32) -> String {
    let mut path = String::from(DIR);
    path.push_str("/f");
    let mut digits = Vec::new();
    let mut rest = n;
    loop {
        digits.push(b'0' + (rest % 10) as u8);
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    digits.reverse();
    path.push_str(core::str::from_utf8(&digits).unwrap_or("?"));
    path
}

/// The length of file `n`.
pub fn len(n: u32) -> usize {
    SIZES[n as usize % SIZES.len()]
}

/// Byte `at` of file `n`.
pub fn byte(n: u32, at: usize) -> u8 {
    let mixed = (n as usize).wrapping_mul(31) ^ at.wrapping_mul(7) ^ (at >> 9);
    mixed.to_le_bytes()[0]
}

/// Whether file `n` is written through an `O_SYNC` descriptor (else: `fsync`).
fn uses_o_sync(n: u32) -> bool {
    n % 3 == 2
}

/// Writes file `n` once: create, write, make durable, close.
fn write_once<C: Channel>(os: &mut Os<C>, n: u32) -> Result<(), Errno> {
    let sync = uses_o_sync(n);
    let flags = O_WRONLY | O_CREAT | O_TRUNC | if sync { O_SYNC } else { 0 };
    let fd = os.open(&path(n), flags)?;
    let total = len(n);
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut at = 0;
    let mut result = Ok(());
    while at < total && result.is_ok() {
        chunk.clear();
        chunk.extend((at..total.min(at + CHUNK)).map(|i| byte(n, i)));
        result = match os.write(fd, &chunk) {
            Ok(written) if written == chunk.len() => Ok(()),
            Ok(_) => Err(ankh_proto::errno::ENOSPC),
            Err(errno) => Err(errno),
        };
        at += chunk.len();
    }
    if result.is_ok() && !sync {
        result = os.fsync(fd);
    }
    let closed = os.close(fd);
    result.and(closed)
}

/// `disk-writer`: writes every file; 0 when all were acknowledged.
pub fn write_all<C: Channel>(os: &mut Os<C>, out: &mut dyn Out) -> u32 {
    match os.mkdir(DIR) {
        Ok(()) | Err(EEXIST) => {}
        Err(errno) => {
            Text::new()
                .str("disk-writer: mkdir failed errno ")
                .int(errno.into())
                .send(out);
            return 1;
        }
    }
    let mut failed = 0;
    for n in 0..FILES {
        let mut attempt = 1;
        loop {
            match write_once(os, n) {
                Ok(()) => {
                    Text::new()
                        .str("acked ")
                        .str(&path(n))
                        .str(" ")
                        .dec(len(n) as u64)
                        .send(out);
                    break;
                }
                Err(errno) if attempt < ATTEMPTS => {
                    Text::new()
                        .str("retry ")
                        .str(&path(n))
                        .str(" errno ")
                        .int(errno.into())
                        .send(out);
                    attempt += 1;
                }
                Err(errno) => {
                    Text::new()
                        .str("gave up ")
                        .str(&path(n))
                        .str(" errno ")
                        .int(errno.into())
                        .send(out);
                    failed += 1;
                    break;
                }
            }
        }
    }
    u32::from(failed > 0)
}

/// Reads file `n` back in chunks: its length, and the offset of its first wrong byte.
fn read_back<C: Channel>(os: &mut Os<C>, n: u32) -> Result<(usize, Option<usize>), Errno> {
    let fd = os.open(&path(n), O_RDONLY)?;
    let mut chunk = alloc::vec![0u8; READ_CHUNK];
    let (mut at, mut wrong) = (0, None);
    let result = loop {
        match os.read(fd, &mut chunk) {
            Ok(0) => break Ok(()),
            Ok(got) => {
                let got = got.min(chunk.len());
                if wrong.is_none() {
                    wrong = (0..got)
                        .find(|&i| chunk[i] != byte(n, at + i))
                        .map(|i| at + i);
                }
                at += got;
            }
            Err(errno) => break Err(errno),
        }
    };
    let closed = os.close(fd);
    result.and(closed).map(|()| (at, wrong))
}

/// `disk-check`: reads every file back; 0 when all are as written.
pub fn check_all<C: Channel>(os: &mut Os<C>, out: &mut dyn Out) -> u32 {
    let mut bad = 0;
    for n in 0..FILES {
        let name = path(n);
        match read_back(os, n) {
            Err(errno) => {
                Text::new()
                    .str("missing ")
                    .str(&name)
                    .str(" errno ")
                    .int(errno.into())
                    .send(out);
                bad += 1;
            }
            Ok((length, None)) if length == len(n) => {
                Text::new()
                    .str("ok ")
                    .str(&name)
                    .str(" ")
                    .dec(length as u64)
                    .send(out);
            }
            Ok((length, wrong)) => {
                Text::new()
                    .str("bad ")
                    .str(&name)
                    .str(" len ")
                    .dec(length as u64)
                    .str(" first wrong byte ")
                    .dec(wrong.map_or(u64::MAX, |w| w as u64))
                    .send(out);
                bad += 1;
            }
        }
    }
    u32::from(bad > 0)
}
