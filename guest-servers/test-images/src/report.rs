//! The console lines of the IPC images, built without `core::fmt`.

use ankh_guest_rt::console::Line;

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
