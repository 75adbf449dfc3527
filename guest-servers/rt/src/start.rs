//! The entry point: `_start` sets up the stack and the heap, and runs the image.

use core::arch::global_asm;

use crate::{heap, hypercall, BootInfo};

extern "Rust" {
    /// The image's main function, defined by [`crate::entry!`].
    fn __ankh_guest_main(boot: &BootInfo) -> u32;
}

// The VMM enters here in 64-bit mode with rdi = the address of the `BootInfo`, interrupts
// disabled and rsp undefined. The stack top is 16-byte aligned, so after `call` the callee
// sees rsp = 8 (mod 16), as the System V ABI requires. rdi is passed through unchanged.
global_asm!(
    ".pushsection .text.ankh_start, \"ax\", @progbits",
    ".global _start",
    ".type _start, @function",
    "_start:",
    "    lea rsp, [rip + __ankh_stack_top]",
    "    xor ebp, ebp",
    "    call {start}",
    "    ud2",
    ".size _start, . - _start",
    ".popsection",
    start = sym start,
);

/// Rust half of the entry point: initializes the heap, runs main and never returns: the domain ends with the exit hypercall.
extern "C" fn start(boot: *const BootInfo) -> ! {
    // SAFETY: the VMM wrote a `BootInfo` at this address (`BOOT_INFO_ADDR`, identity
    // mapped) before the first instruction ran and never changes it afterwards; every
    // bit pattern is a valid `BootInfo` (it is `FromBytes`), and it lives for the whole
    // run, so a shared `'static` reference is sound.
    let boot = unsafe { &*boot };
    crate::process_call::init(boot.process_control);
    heap::init(boot);
    // SAFETY: `entry!` defines this symbol with exactly this signature; a missing or
    // mistyped main is a link or compile error in the image.
    let code = unsafe { __ankh_guest_main(boot) };
    hypercall::exit(code)
}
