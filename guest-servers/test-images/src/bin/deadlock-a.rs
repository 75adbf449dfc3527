//! Deadlock test, side A (no peers): waits for a message from `deadlock-b`, whose id it
//! takes to be its own plus `DEADLOCK_B_ID_OFFSET`. Prints `deadlock-a: got <opcode>
//! from <source>` (opcode in hex without prefix, e.g. `7f03`) or `deadlock-a: error
//! <errno>`, and returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::num;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{
    DEADLOCK_A_ERROR_PREFIX, DEADLOCK_A_GOT_PREFIX, DEADLOCK_B_ID_OFFSET,
};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let b = boot.domain_id + DEADLOCK_B_ID_OFFSET;
    let mut ipc = Ipc::init();
    match ipc.receive_from(b) {
        Ok(message) => Line::new()
            .str(DEADLOCK_A_GOT_PREFIX)
            .bytes(num::hex(
                message.header.opcode.into(),
                &mut [0; num::HEX_MAX],
            ))
            .str(" from ")
            .dec(message.header.source.into())
            .send(),
        Err(errno) => Line::new()
            .str(DEADLOCK_A_ERROR_PREFIX)
            .int(errno.into())
            .send(),
    }
    0
}
