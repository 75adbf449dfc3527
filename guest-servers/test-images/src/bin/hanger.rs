//! Sends `echo` a request it hangs on (`TEST_HANG`), then pings it. Prints
//! `hanger: hang errno <e>` and `hanger: ping ok` (or `hanger: ping errno <e>`);
//! returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use ankh_test_images::report::{call_errno, ping};
use virtio_seep::opcode::TEST_HANG;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    call_errno(&mut ipc, "hanger", "hang", echo, TEST_HANG);
    ping(&mut ipc, "hanger", echo);
    0
}
