//! Compute speed benchmark: `BUSY_LOOP_ITERATIONS` iterations of integer arithmetic
//! with no exit, then exit 0.
#![no_std]
#![no_main]

use core::hint::black_box;

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::BUSY_LOOP_ITERATIONS;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    let mut acc = 0u64;
    for i in 0..BUSY_LOOP_ITERATIONS {
        acc = black_box(acc.wrapping_mul(31).wrapping_add(i));
    }
    // Always 0; depends on `acc` so the loop cannot be removed.
    u32::from(acc == u64::MAX)
}
