//! Executes `ud2`: an invalid-opcode fault, which its parent's `wait` reports as
//! `EXIT_FAULT`.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: `ud2` raises #UD; the runtime's exception stub reports it and the VMM
    // stops the domain. Nothing after it runs.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
    1
}
