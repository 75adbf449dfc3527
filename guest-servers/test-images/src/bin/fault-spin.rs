//! Spins forever without any VM exit.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: an endless jump to itself touches nothing.
    unsafe { asm!("2:", "jmp 2b", options(noreturn, nomem, nostack)) }
}
