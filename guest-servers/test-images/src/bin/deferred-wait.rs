//! IPC client: a `TEST_DEFERRED` call to the peer `echo`, which answers only when
//! someone sends `TEST_RELEASE`. Prints `deferred-wait: released <payload byte>` and
//! returns 0, or `deferred-wait: FAILED ...` and returns 1.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{DEFERRED_WAIT_PREFIX, ECHO_PEER};
use ankh_test_images::report::{failed, failed_errno};
use virtio_seep::opcode::TEST_DEFERRED;

ankh_guest_rt::entry!(main);

const IMAGE: &str = "deferred-wait";

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return failed(IMAGE, "no peer echo", 0);
    };
    let mut ipc = Ipc::init();
    match ipc.sendrec(echo, TEST_DEFERRED, &[], &[]) {
        Ok(reply) => match reply.payload.first() {
            Some(&position) => {
                Line::new()
                    .str(DEFERRED_WAIT_PREFIX)
                    .dec(position.into())
                    .send();
                0
            }
            None => failed(IMAGE, "empty reply", 0),
        },
        Err(errno) => failed_errno(IMAGE, "call", 0, errno),
    }
}
