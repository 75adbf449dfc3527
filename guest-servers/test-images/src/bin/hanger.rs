//! Sends `echo` a request it hangs on (`TEST_HANG`), then pings it. Prints
//! `hanger: hang errno <e>` and `hanger: ping ok` (or `hanger: ping errno <e>`);
//! returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use virtio_seep::opcode::{TEST_HANG, TEST_PING};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    let errno = match ipc.sendrec(echo, TEST_HANG, &[], &[]) {
        Ok(_) => 0,
        Err(errno) => errno,
    };
    Line::new()
        .str("hanger: hang errno ")
        .int(errno.into())
        .send();
    match ipc.sendrec(echo, TEST_PING, &[], &[]) {
        Ok(_) => Line::new().str("hanger: ping ok").send(),
        Err(errno) => Line::new()
            .str("hanger: ping errno ")
            .int(errno.into())
            .send(),
    }
    0
}
