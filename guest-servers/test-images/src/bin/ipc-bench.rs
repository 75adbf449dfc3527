//! IPC benchmark client of the peer `echo`, chosen by the domain name (see
//! `expect::IPC_BENCH_NAMES`): many calls, nothing printed, exit 0; the host times the
//! whole run.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::buffer::OnceBuffer;
use ankh_test_images::expect::{
    BENCH_4K_BULK, BENCH_4K_COUNT, BENCH_64K_BULK, BENCH_64K_COUNT, BENCH_NULL_COUNT, ECHO_PEER,
    IPC_FAILED_CODE, UNKNOWN_NAME_CODE,
};
use ankh_test_images::report::failed;
use virtio_seep::opcode::{TEST_ECHO, TEST_PING};

ankh_guest_rt::entry!(main);

const IMAGE: &str = "ipc-bench";

/// The bulk data sent (zeros; its content does not matter).
static BULK: OnceBuffer<{ BENCH_64K_BULK as usize }> = OnceBuffer::new();

fn main(boot: &BootInfo) -> u32 {
    let name = boot.name();
    let (opcode, count, bulk_len) = match name {
        "bench-null" => (TEST_PING, BENCH_NULL_COUNT, 0),
        "bench-4k" => (TEST_ECHO, BENCH_4K_COUNT, BENCH_4K_BULK),
        "bench-64k" => (TEST_ECHO, BENCH_64K_COUNT, BENCH_64K_BULK),
        _ => {
            Line::new().str(IMAGE).str(": unknown ").str(name).send();
            return UNKNOWN_NAME_CODE;
        }
    };
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let bulk = &BULK.take()[..bulk_len as usize];
    let mut ipc = Ipc::init();
    for call in 0..count {
        if let Err(errno) = ipc.sendrec(echo, opcode, &[], bulk) {
            Line::new()
                .str(IMAGE)
                .str(": FAILED ")
                .str(name)
                .str(" ")
                .dec(call.into())
                .str(" errno ")
                .int(errno.into())
                .send();
            return IPC_FAILED_CODE;
        }
    }
    0
}
