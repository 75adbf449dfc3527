//! Writes to a legacy port outside the hypercall range (COM1): #GP in user mode.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{FAULT_HYPERCALL_VALUE, FAULT_PORT, RESUMED_AFTER_FAULT_CODE};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: a port write that user mode may not make (a #GP) and kernel mode makes as an unknown hypercall; it reads no guest
    // memory and changes no register.
    unsafe {
        asm!(
            "out dx, eax",
            in("dx") FAULT_PORT,
            in("eax") FAULT_HYPERCALL_VALUE,
            options(nomem, nostack, preserves_flags),
        );
    }
    RESUMED_AFTER_FAULT_CODE
}
