//! Panics with a static message (see `expect::FAULT_PANIC_*`).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

// `expect::FAULT_PANIC_LINE` is the line of the `panic!` below.
fn main(_boot: &BootInfo) -> u32 {
    panic!("deliberate panic")
}
