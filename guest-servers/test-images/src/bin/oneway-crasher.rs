//! Recovery client of `echo` for a fault during a one-way message: stores "a", then
//! "b" (answered: acknowledged work), sends one `TEST_NOTIFY` and the poison one-way
//! `TEST_NOTIFY_CRASH`, then stores "c" and asks for echo's notification count.
//! Prints `oneway-crasher: previous <text>` (what echo kept before "c": must be "b")
//! and `oneway-crasher: count <n>` (the poison's count must be undone: 1); returns 0.
#![no_std]
#![no_main]

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::ECHO_PEER;
use virtio_seep::opcode::{TEST_COUNT, TEST_NOTIFY, TEST_NOTIFY_CRASH, TEST_STORE};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let Some(echo) = boot.peer(ECHO_PEER) else {
        return 1;
    };
    let mut ipc = Ipc::init();
    let _ = ipc.sendrec(echo, TEST_STORE, b"a", &[]);
    let _ = ipc.sendrec(echo, TEST_STORE, b"b", &[]);
    ipc.send(echo, TEST_NOTIFY, &[], &[]);
    ipc.send(echo, TEST_NOTIFY_CRASH, &[], &[]);
    match ipc.sendrec(echo, TEST_STORE, b"c", &[]) {
        Ok(reply) => Line::new()
            .str("oneway-crasher: previous ")
            .bytes(reply.payload)
            .send(),
        Err(errno) => Line::new()
            .str("oneway-crasher: store errno ")
            .int(errno.into())
            .send(),
    }
    match ipc.sendrec(echo, TEST_COUNT, &[], &[]) {
        Ok(reply) if reply.payload.len() == 8 => {
            let mut count = [0u8; 8];
            count.copy_from_slice(reply.payload);
            Line::new()
                .str("oneway-crasher: count ")
                .dec(u64::from_le_bytes(count))
                .send();
        }
        _ => Line::new().str("oneway-crasher: count failed").send(),
    }
    0
}
