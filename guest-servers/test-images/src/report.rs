//! The console lines of the IPC images, built without `core::fmt`.

use ankh_guest_rt::console::Line;
use ankh_guest_rt::ipc::Ipc;

use crate::expect::IPC_FAILED_CODE;

/// Prints `<image>: FAILED <what> <index>` and returns [`IPC_FAILED_CODE`].
pub fn failed(image: &str, what: &str, index: u64) -> u32 {
    Line::new()
        .str(image)
        .str(": FAILED ")
        .str(what)
        .str(" ")
        .dec(index)
        .send();
    IPC_FAILED_CODE
}

/// Prints `<image>: FAILED <what> <index> errno <errno>` and returns
/// [`IPC_FAILED_CODE`].
pub fn failed_errno(image: &str, what: &str, index: u64, errno: i32) -> u32 {
    Line::new()
        .str(image)
        .str(": FAILED ")
        .str(what)
        .str(" ")
        .dec(index)
        .str(" errno ")
        .int(i64::from(errno))
        .send();
    IPC_FAILED_CODE
}

/// Calls `to` with `opcode` (no payload) and prints `<image>: <what> errno <e>`, with
/// 0 when the call succeeded; returns the errno. For the recovery test clients, whose
/// point is which error a call got.
pub fn call_errno(ipc: &mut Ipc, image: &str, what: &str, to: u32, opcode: u16) -> i32 {
    let errno = match ipc.sendrec(to, opcode, &[], &[]) {
        Ok(_) => 0,
        Err(errno) => errno,
    };
    Line::new()
        .str(image)
        .str(": ")
        .str(what)
        .str(" errno ")
        .int(errno.into())
        .send();
    errno
}

/// Pings `to` and prints `<image>: ping ok` or `<image>: ping errno <e>`.
pub fn ping(ipc: &mut Ipc, image: &str, to: u32) {
    match ipc.sendrec(to, virtio_seep::opcode::TEST_PING, &[], &[]) {
        Ok(_) => Line::new().str(image).str(": ping ok").send(),
        Err(errno) => Line::new()
            .str(image)
            .str(": ping errno ")
            .int(errno.into())
            .send(),
    }
}
