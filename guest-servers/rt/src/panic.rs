//! The panic handler: reports file, line and static message to the VMM.
//!
//! Only `PanicMessage::as_str` is used: formatting the message would run `core::fmt`,
//! whose precompiled integer formatting contains SSE instructions. A panic with
//! formatted arguments is therefore reported without its message.

use core::panic::PanicInfo;

use crate::hypercall;

#[panic_handler]
fn panic(info: &PanicInfo<'_>) -> ! {
    let (file, line) = match info.location() {
        Some(location) => (location.file(), location.line()),
        None => ("", 0),
    };
    let message = info.message().as_str().unwrap_or("");
    hypercall::panic(file, line, message)
}
