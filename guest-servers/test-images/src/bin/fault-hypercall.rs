//! Writes `FAULT_HYPERCALL_VALUE` to the hypercall port no call uses.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{FAULT_HYPERCALL_VALUE, RESUMED_AFTER_FAULT_CODE};
use virtio_seep::abi::hypercall::UNASSIGNED_PORT;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: a port write the VMM treats as an unknown hypercall; it reads no guest
    // memory and changes no register.
    unsafe {
        asm!(
            "out dx, eax",
            in("dx") UNASSIGNED_PORT,
            in("eax") FAULT_HYPERCALL_VALUE,
            options(nomem, nostack, preserves_flags),
        );
    }
    RESUMED_AFTER_FAULT_CODE
}
