//! Asks `echo` to answer its parked requests and then crash (`TEST_RELEASE_CRASH`):
//! the crash comes after echo exposed its state to another client. Prints
//! `release-crasher: release errno <e>` (0 when the call succeeded) and returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use ankh_test_images::report::call_errno;
use virtio_seep::opcode::TEST_RELEASE_CRASH;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    call_errno(
        &mut ipc,
        "release-crasher",
        "release",
        echo,
        TEST_RELEASE_CRASH,
    );
    0
}
