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
use virtio_seep::opcode::{TEST_CRASH, TEST_PING, TEST_STORE};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    let _ = ipc.sendrec(echo, TEST_STORE, b"a", &[]);
    crash(&mut ipc, echo);
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
    crash(&mut ipc, echo);
    match ipc.sendrec(echo, TEST_PING, &[], &[]) {
        Ok(_) => Line::new().str("crasher: ping ok").send(),
        Err(errno) => Line::new()
            .str("crasher: ping errno ")
            .int(errno.into())
            .send(),
    }
    0
}

fn crash(ipc: &mut Ipc, echo: u32) {
    let errno = match ipc.sendrec(echo, TEST_CRASH, &[], &[]) {
        Ok(_) => 0,
        Err(errno) => errno,
    };
    Line::new()
        .str("crasher: crash errno ")
        .int(errno.into())
        .send();
}
