//! Sends `echo` a request it loops on through hypercalls (`TEST_BUSY`), then pings it.
//! Prints `busy-caller: busy errno <e>` and `busy-caller: ping ok` (or
//! `busy-caller: ping errno <e>`); returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use ankh_test_images::report::{call_errno, ping};
use virtio_seep::opcode::TEST_BUSY;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    call_errno(&mut ipc, "busy-caller", "busy", echo, TEST_BUSY);
    ping(&mut ipc, "busy-caller", echo);
    0
}
