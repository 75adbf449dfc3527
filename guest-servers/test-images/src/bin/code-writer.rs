//! Code writer: a user-mode guest that writes its own code page between two `Nop`s
//! (it writes back the byte already there, so the code is unchanged). A guest that can
//! write its code can rewrite its exception stubs and run its own code at CPL0, so
//! the VMM must treat the checkpoint at the second `Nop` as tainted. Then `ud2`.
#![no_std]
#![no_main]

use core::ptr::{read_volatile, write_volatile};

use ankh_guest_rt::{hypercall, BootInfo};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    let code = main as *const () as *mut u8;
    // SAFETY: `code` is the first byte of this function, in the image's text, which
    // the identity map leaves writable; the same value is written back, so the
    // instructions stay as they are.
    unsafe { write_volatile(code, read_volatile(code)) };
    hypercall::nop();
    // SAFETY: `ud2` raises #UD, which the runtime's exception stubs report; the VMM
    // never resumes the domain past it.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}
