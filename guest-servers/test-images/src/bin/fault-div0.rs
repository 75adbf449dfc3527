//! Divides by zero: divide error, vector 0.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: `div ecx` with ecx = 0 raises #DE, which the runtime's exception stubs report to the
    // VMM; the handler never returns here.
    unsafe {
        asm!(
            "xor edx, edx",
            "xor ecx, ecx",
            "div ecx",
            "ud2",
            in("eax") 1u32,
            options(noreturn, nomem, nostack),
        )
    }
}
