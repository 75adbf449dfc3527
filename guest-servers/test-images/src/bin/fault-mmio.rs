//! Writes `FAULT_MMIO_VALUE` to `FAULT_MMIO_ADDR` (mapped, no RAM): an MMIO exit.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::{FAULT_MMIO_ADDR, FAULT_MMIO_VALUE, RESUMED_AFTER_FAULT_CODE};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    let address = FAULT_MMIO_ADDR as *mut u32;
    // SAFETY: the address is identity-mapped but backed by no RAM, so the write reaches
    // the VMM as an MMIO exit and changes no guest memory. The volatile write is a single
    // 4-byte store the compiler cannot remove or split.
    unsafe { address.write_volatile(FAULT_MMIO_VALUE) };
    RESUMED_AFTER_FAULT_CODE
}
