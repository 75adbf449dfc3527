//! A small workload for the guest-debugging tests: a loop of loads, stores, arithmetic
//! and conditional branches whose result it prints (`DEBUG_PROBE_LINE`), then exit 0.
//! Its loop runs after a first exit (a `Nop`) and outside any hypercall: a debug plan
//! armed before the domain runs takes effect at its first instruction in a VM and at
//! its first exit in a process (whose first entry does not go through the control
//! page), so both substrates see the whole loop.
#![no_std]
#![no_main]

use core::hint::black_box;

use ankh_guest_rt::console::Line;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::{DEBUG_PROBE_PREFIX, DEBUG_PROBE_ROUNDS};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    let mut squares = [0u64; DEBUG_PROBE_ROUNDS];
    for (i, square) in squares.iter_mut().enumerate() {
        let i = black_box(i as u64);
        *square = i * i;
    }
    let mut sum = 0u64;
    for square in &squares {
        if black_box(*square) % 2 == 0 {
            sum += black_box(*square);
        }
    }
    Line::new().str(DEBUG_PROBE_PREFIX).dec(sum).send();
    0
}
