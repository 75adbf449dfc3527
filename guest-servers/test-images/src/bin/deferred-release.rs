//! IPC client: a `TEST_RELEASE` call to the peer `echo`, which first answers every
//! parked `TEST_DEFERRED` request. Prints `deferred-release: done` and returns 0, or
//! `deferred-release: FAILED ...` and returns 1.
#![no_std]
#![no_main]

use ankh_guest_rt::console::println_str;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{DEFERRED_RELEASE_DONE, ECHO_PEER};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::opcode::TEST_RELEASE;

ankh_guest_rt::entry!(main);

const IMAGE: &str = "deferred-release";

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let mut ipc = Ipc::init();
    match ipc.sendrec(echo, TEST_RELEASE, &[], &[]) {
        Ok(_) => {
            println_str(DEFERRED_RELEASE_DONE);
            0
        }
        Err(errno) => failed_errno(IMAGE, "call", 0, errno),
    }
}
