//! Segment probe: changes its data segment registers between checkpoints. Makes a `Nop`
//! (first checkpoint), loads the null selector into DS, ES, FS and GS (allowed at CPL3
//! in 64-bit mode), makes a second `Nop` (the host checkpoints again, with the segments
//! changed), loads the user data selector back, and executes `ud2`. A host that rolls
//! it back to the second `Nop` must give it back the null selectors, not the ones of
//! the first checkpoint or of the fault.
#![no_std]
#![no_main]

use ankh_guest_rt::{hypercall, BootInfo};
use virtio_seep::abi::layout::USER_DATA_SELECTOR;

ankh_guest_rt::entry!(main);

/// Loads `selector` into DS, ES, FS and GS.
fn load_data_segments(selector: u16) {
    // SAFETY: the null selector and the user data selector are both valid for data
    // segment registers at CPL3 in 64-bit mode, where DS and ES are not used for
    // addressing and this image uses no FS- or GS-relative access.
    unsafe {
        core::arch::asm!(
            "mov ds, {0:x}",
            "mov es, {0:x}",
            "mov fs, {0:x}",
            "mov gs, {0:x}",
            in(reg) selector,
            options(nostack, preserves_flags),
        );
    }
}

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    load_data_segments(0);
    hypercall::nop();
    load_data_segments(USER_DATA_SELECTOR);
    // SAFETY: `ud2` raises #UD, which the runtime's exception stubs report; the VMM
    // never resumes the domain past it.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}
