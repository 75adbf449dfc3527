//! Recovery client of `echo`: stores "a", sends the poison `TEST_CRASH` (echo corrupts
//! its state and crashes), stores "b" (the reply shows what echo kept), sends the poison
//! again, then pings. Prints one line per step:
//! `crasher: crash errno <e>` (twice), `crasher: previous <text>`, `crasher: ping ok`
//! or `crasher: ping errno <e>`; returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use ankh_test_images::report::{call_errno, ping};
use virtio_seep::opcode::{TEST_CRASH, TEST_STORE};

ankh_guest_rt::entry!(main);

const IMAGE: &str = "crasher";

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    let _ = ipc.sendrec(echo, TEST_STORE, b"a", &[]);
    call_errno(&mut ipc, IMAGE, "crash", echo, TEST_CRASH);
    match ipc.sendrec(echo, TEST_STORE, b"b", &[]) {
        Ok(reply) => Line::new()
            .str("crasher: previous ")
            .bytes(reply.payload)
            .send(),
        Err(errno) => Line::new()
            .str("crasher: store errno ")
            .int(errno.into())
            .send(),
    }
    call_errno(&mut ipc, IMAGE, "crash", echo, TEST_CRASH);
    ping(&mut ipc, IMAGE, echo);
    0
}
