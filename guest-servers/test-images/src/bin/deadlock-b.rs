//! Deadlock test, side B (peer `deadlock-a`): waits for a message from `deadlock-a`,
//! which is refused with `EDEADLK` when A already waits for B. Prints `deadlock-b: error
//! <errno>` (or `deadlock-b: got <opcode> from <source>`, opcode in hex without prefix),
//! then sends `TEST_NOTIFY` to A, which ends A's wait, and returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::num;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{DEADLOCK_B_ERROR_PREFIX, IPC_FAILED_CODE};
use virtio_seep::opcode::TEST_NOTIFY;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(a) = boot.peer("deadlock-a") else {
        Line::new()
            .str("deadlock-b: FAILED no peer deadlock-a")
            .send();
        return IPC_FAILED_CODE;
    };
    let mut ipc = Ipc::init();
    match ipc.receive_from(a) {
        Ok(message) => Line::new()
            .str("deadlock-b: got ")
            .bytes(num::hex(
                message.header.opcode.into(),
                &mut [0; num::HEX_MAX],
            ))
            .str(" from ")
            .dec(message.header.source.into())
            .send(),
        Err(errno) => Line::new()
            .str(DEADLOCK_B_ERROR_PREFIX)
            .int(errno.into())
            .send(),
    }
    ipc.send(a, TEST_NOTIFY, &[], &[]);
    0
}
