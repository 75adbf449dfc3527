//! Reads above the identity map: page fault, vector 14, CR2 = `FAULT_PAGE_ADDR`.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{FAULT_PAGE_ADDR, RESUMED_AFTER_FAULT_CODE};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    let address = FAULT_PAGE_ADDR as *const u64;
    // SAFETY: deliberately reads an unmapped address: the CPU raises #PF before any value
    // is produced, and the runtime's exception stubs report it to the VMM. The volatile read cannot
    // be removed or moved by the compiler.
    let _ = unsafe { address.read_volatile() };
    RESUMED_AFTER_FAULT_CODE
}
