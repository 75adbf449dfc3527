//! `flood`: malformed and misdirected requests to every server, in a loop.
//!
//! Each iteration picks a server, an opcode that expects a reply, a payload and bulk
//! data from a fixed pseudo-random sequence (xorshift, same every run): records of the
//! right size with garbage fields, short and empty records, descriptor numbers that
//! name nothing, absurd lengths and offsets, paths that are garbage (not UTF-8, not
//! terminated, too long, relative), and opcodes of other servers, of the kernel and of
//! the tests. Every request must come back with a reply (an error, mostly); the servers
//! must keep working, which the last step checks.
//!
//! What flood leaves out, because a correct server would honour it and the result
//! would not be a malformed request but a real one that breaks the run: opcodes that
//! block by design (`DS_SUBSCRIBE`, `PM_WAIT`: flood has no child, but a spawn that
//! succeeded would change that), `VFS_PIPE` (a later read of its own pipe would block
//! forever) and `PM_KILL` of live pids (kill pids are kept far above any real one).
//! Left out because the VMM stops the sender: one-way opcodes (`sendrec` on them is a
//! bad operation) and the process-lifecycle opcodes (`VFS_PROC_*`, `MM_PROC_*`), which
//! only the process manager may send. Kernel opcodes are sent to the servers, never to
//! the VMM (domain 0), whose call graph refuses processes.

use alloc::vec::Vec;

use ankh_proto::opcode::{
    DS_DELETE, DS_LIST, DS_PUBLISH, DS_RETRIEVE, MM_BRK, MM_MAP, MM_UNMAP, MM_USAGE, PM_GETPID,
    PM_GETPPID, PM_KILL, PM_PS, PM_SPAWN, SYS_CREATE_DOMAIN, SYS_KILL_DOMAIN, SYS_ROOT_FS,
    TEST_DEFERRED, TEST_ECHO, TEST_PING, TEST_PRINT, TEST_RELEASE, TEST_STORE, VFS_CLOSE, VFS_DUP,
    VFS_FSTAT, VFS_LSEEK, VFS_MKDIR, VFS_OPEN, VFS_PREAD, VFS_PWRITE, VFS_READ, VFS_READDIR,
    VFS_RENAME, VFS_RMDIR, VFS_STAT, VFS_TRUNCATE, VFS_UNLINK, VFS_WRITE,
};
use ankh_proto::vfs::O_RDONLY;
use ankh_ulib::{Channel, Os, Server};

use crate::out::{Out, Text};

/// Iterations of the `flood` image.
pub const ITERATIONS: u32 = 3000;

/// Every pid flood names in a kill message is at least this (no real process has such
/// a pid: PM keeps at most `PROC_MAX` alive).
const FAR_PID: u32 = 1_000_000;

/// The opcodes flood sends, each expecting a reply.
const OPCODES: &[u16] = &[
    PM_SPAWN,
    PM_GETPID,
    PM_GETPPID,
    PM_KILL,
    PM_PS,
    VFS_OPEN,
    VFS_CLOSE,
    VFS_READ,
    VFS_WRITE,
    VFS_PREAD,
    VFS_PWRITE,
    VFS_LSEEK,
    VFS_STAT,
    VFS_FSTAT,
    VFS_UNLINK,
    VFS_MKDIR,
    VFS_RMDIR,
    VFS_READDIR,
    VFS_RENAME,
    VFS_TRUNCATE,
    VFS_DUP,
    DS_PUBLISH,
    DS_RETRIEVE,
    DS_DELETE,
    DS_LIST,
    MM_BRK,
    MM_MAP,
    MM_UNMAP,
    MM_USAGE,
    SYS_CREATE_DOMAIN,
    SYS_KILL_DOMAIN,
    SYS_ROOT_FS,
    TEST_PING,
    TEST_ECHO,
    TEST_STORE,
    TEST_PRINT,
    TEST_DEFERRED,
    TEST_RELEASE,
];

/// The servers, in the order the generator picks them.
const SERVERS: [Server; 4] = [Server::Pm, Server::Vfs, Server::Ds, Server::Mm];

/// A xorshift64 sequence.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// The sequence from `seed` (0 is replaced: xorshift would stay at 0).
    pub fn new(seed: u64) -> Rng {
        Rng(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number below `bound` (> 0).
    pub fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next_u64() % u64::try_from(bound).unwrap_or(1)).unwrap_or(0)
    }

    /// `len` pseudo-random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64().to_le_bytes()[0]).collect()
    }
}

/// A 32-bit field value: garbage, or one of the edge values servers get wrong.
fn field(rng: &mut Rng) -> u32 {
    match rng.below(6) {
        0 => 0,
        1 => u32::MAX,
        2 => 0x7fff_ffff,
        3 => 0x8000_0000,
        4 => u32::try_from(rng.below(64)).unwrap_or(0),
        _ => rng.next_u64().to_le_bytes()[0].into(),
    }
}

/// An inline payload: records of typical sizes made of edge values, or raw garbage.
fn payload(rng: &mut Rng, opcode: u16) -> Vec<u8> {
    let mut out = Vec::new();
    match rng.below(4) {
        0 => {}
        1 => {
            let len = rng.below(40);
            out = rng.bytes(len);
        }
        _ => {
            let words = [2usize, 4, 4, 6][rng.below(4)];
            for _ in 0..words {
                out.extend_from_slice(&field(rng).to_le_bytes());
            }
        }
    }
    // Keep pids in kill messages away from live processes.
    if matches!(opcode, PM_KILL | SYS_KILL_DOMAIN) {
        out.resize(out.len().max(16), 0);
        out[..4].copy_from_slice(&(FAR_PID + field(rng) % FAR_PID).to_le_bytes());
        out[4..8].copy_from_slice(&(FAR_PID + field(rng) % FAR_PID).to_le_bytes());
    }
    out
}

/// Bulk data: garbage paths and lists, or nothing.
fn bulk(rng: &mut Rng) -> Vec<u8> {
    match rng.below(7) {
        0 => Vec::new(),
        1 => {
            let len = rng.below(300);
            rng.bytes(len)
        }
        2 => b"/\xff\xfe\0".to_vec(),
        3 => b"/no/terminator".to_vec(),
        4 => {
            let mut long = alloc::vec![b'z'; 402];
            long[0] = b'/';
            long[401] = 0;
            long
        }
        5 => b"relative/path\0\0\0".to_vec(),
        _ => {
            let mut path = b"/flood-".to_vec();
            path.extend(rng.bytes(3).iter().map(|b| b'a' + b % 26));
            path.push(0);
            path
        }
    }
}

/// Sends `iterations` requests; prints `flood: <n> requests, <m> refused`, checks that
/// each server still answers a plain request, and prints `flood: done`. Returns 0, or
/// 1 if a server no longer works.
pub fn run<C: Channel>(os: &mut Os<C>, out: &mut dyn Out, iterations: u32) -> u32 {
    let mut rng = Rng::new(0x00f1_00d5_eed0_0001);
    let mut refused = 0u64;
    for _ in 0..iterations {
        let server = SERVERS[rng.below(SERVERS.len())];
        let opcode = OPCODES[rng.below(OPCODES.len())];
        let payload = payload(&mut rng, opcode);
        let bulk = bulk(&mut rng);
        if os.call(server, opcode, &payload, &bulk).is_err() {
            refused += 1;
        }
    }
    Text::new()
        .str("flood: ")
        .dec(iterations.into())
        .str(" requests, ")
        .dec(refused)
        .str(" refused")
        .send(out);
    let alive = [
        os.getpid().is_ok(),
        os.open("/", O_RDONLY).and_then(|fd| os.close(fd)).is_ok(),
        os.ds_list("").is_ok(),
        os.usage().is_ok(),
    ];
    let mut code = 0;
    for (name, ok) in ["pm", "vfs", "ds", "mm"].iter().zip(alive) {
        if !ok {
            Text::new()
                .str("flood: FAIL ")
                .str(name)
                .str(" stopped working")
                .send(out);
            code = 1;
        }
    }
    Text::new().str("flood: done").send(out);
    code
}
