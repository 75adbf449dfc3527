//! Executes `ud2`: invalid opcode, vector 6.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: `ud2` raises #UD, which the runtime's exception stubs report to the VMM; the handler
    // never returns here.
    unsafe { asm!("ud2", options(noreturn, nomem, nostack)) }
}
