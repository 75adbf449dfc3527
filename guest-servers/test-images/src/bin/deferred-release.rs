//! IPC client: a `TEST_RELEASE` call to the peer `echo`, which first answers every
//! parked `TEST_DEFERRED` request, repeated until it released one (the waiting client
//! may not have parked yet: the order of two clients depends on scheduling), at most
//! `RELEASE_TRIES` times. Prints `deferred-release: done` and returns 0, or
//! `deferred-release: FAILED ...` and returns 1.
#![no_std]
#![no_main]

use ankh_guest_rt::console::println_str;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::{DEFERRED_RELEASE_DONE, ECHO_PEER};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::opcode::TEST_RELEASE;

ankh_guest_rt::entry!(main);

const IMAGE: &str = "deferred-release";

/// Releases asked for at most: each that finds nothing parked is followed by a `Nop`,
/// until the scheduler lets the waiting client run (it ends this one's turn).
const RELEASE_TRIES: u32 = 1_000_000;

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let mut ipc = Ipc::init();
    for _ in 0..RELEASE_TRIES {
        match ipc.sendrec(echo, TEST_RELEASE, &[], &[]) {
            Ok(reply) if reply.payload.first().is_some_and(|&n| n > 0) => {
                println_str(DEFERRED_RELEASE_DONE);
                return 0;
            }
            Ok(_) => hypercall::nop(),
            Err(errno) => return failed_errno(IMAGE, "call", 0, errno),
        }
    }
    failed(IMAGE, "nothing was ever parked", 0)
}
