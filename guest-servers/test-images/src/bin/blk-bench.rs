//! Block throughput benchmark client of the `blk` server: `BLK_BENCH_MIB` writes of
//! 1 MiB (sequential, wrapping on a `BLK_BENCH_DISK_MIB` MiB disk) and a flush, then as
//! many 1 MiB reads; a `Nop` hypercall before, between and after, which the host
//! timestamps. Returns 0, or prints a `FAILED` line and returns `IPC_FAILED_CODE`.
#![no_std]
#![no_main]

use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_proto::blk::{Range, SECTORS_MAX};
use ankh_test_images::buffer::OnceBuffer;
use ankh_test_images::expect::{BLK_BENCH_DISK_MIB, BLK_BENCH_MIB, BLK_PEER};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::opcode::{BLK_FLUSH, BLK_READ, BLK_WRITE};
use zerocopy::IntoBytes;

ankh_guest_rt::entry!(main);

const IMAGE: &str = "blk-bench";

/// The data written (1 MiB).
static BUFFER: OnceBuffer<{ 1 << 20 }> = OnceBuffer::new();

fn range(mib: u64) -> Range {
    Range {
        sector: (mib % BLK_BENCH_DISK_MIB) * u64::from(SECTORS_MAX),
        count: SECTORS_MAX,
        reserved: 0,
    }
}

fn main(boot: &BootInfo) -> u32 {
    let Some(blk) = boot.peer(BLK_PEER) else {
        return failed(IMAGE, "no peer blk", 0);
    };
    let mut ipc = Ipc::init();
    let buffer = BUFFER.take();
    for (i, byte) in buffer.iter_mut().enumerate() {
        *byte = u8::try_from(i % 251).unwrap_or(0);
    }
    hypercall::nop();
    for mib in 0..BLK_BENCH_MIB {
        if let Err(errno) = ipc.sendrec(blk, BLK_WRITE, range(mib).as_bytes(), &buffer[..]) {
            return failed_errno(IMAGE, "write", mib, errno);
        }
    }
    if let Err(errno) = ipc.sendrec(blk, BLK_FLUSH, &[], &[]) {
        return failed_errno(IMAGE, "flush", 0, errno);
    }
    hypercall::nop();
    for mib in 0..BLK_BENCH_MIB {
        if let Err(errno) = ipc.sendrec(blk, BLK_READ, range(mib).as_bytes(), &[]) {
            return failed_errno(IMAGE, "read", mib, errno);
        }
    }
    hypercall::nop();
    0
}
