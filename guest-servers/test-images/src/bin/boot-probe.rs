//! Boot benchmark: one `Nop` hypercall marks "booted", then exits with 0.
#![no_std]
#![no_main]

use ankh_guest_rt::{hypercall, BootInfo};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    0
}
