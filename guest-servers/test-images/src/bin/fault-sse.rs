//! Executes `xorps xmm0, xmm0` (raw bytes `FAULT_SSE_BYTES`), which KVM here cannot run.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::RESUMED_AFTER_FAULT_CODE;

ankh_guest_rt::entry!(main);

// Not inlined: the SIMD check expects the instruction in this very function.
#[inline(never)]
fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: `xorps xmm0, xmm0` only zeroes xmm0, which the guest never uses otherwise
    // (it is declared clobbered anyway); here it fails in the VMM, elsewhere it runs.
    unsafe {
        asm!(".byte 0x0f, 0x57, 0xc0", out("xmm0") _, options(nomem, nostack, preserves_flags))
    };
    RESUMED_AFTER_FAULT_CODE
}
