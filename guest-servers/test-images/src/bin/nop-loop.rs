//! Raw exit cost benchmark: `NOP_LOOP_COUNT` `Nop` hypercalls, then exit 0.
#![no_std]
#![no_main]

use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::NOP_LOOP_COUNT;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    for _ in 0..NOP_LOOP_COUNT {
        hypercall::nop();
    }
    0
}
