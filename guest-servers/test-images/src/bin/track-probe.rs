//! Write-tracking probe: a `Nop`, then [`TRACK_PHASES`] phases, each ending with a `Nop` (the host
//! checkpoints there, and may roll a phase back and let it run again). Phase 0 writes
//! [`TRACK_PAGES`] pages, more than a process domain's write log holds; every phase
//! writes page 0 (a hot page); the next [`TRACK_COOL_PHASES`] write nothing else, so
//! the other pages cool down and are protected again; then one phase writes pages
//! 1 to [`TRACK_REWRITTEN`] again (cooled, then written), and the last writes every
//! page again. Then it exits.
#![no_std]
#![no_main]

use core::ptr::{addr_of_mut, write_volatile};

use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::{TRACK_COOL_PHASES, TRACK_PAGES, TRACK_PHASES, TRACK_REWRITTEN};

ankh_guest_rt::entry!(main);

/// The pages the probe writes.
static mut PAGES: [[u8; 4096]; TRACK_PAGES] = [[0; 4096]; TRACK_PAGES];

/// Writes `value` into each page of `pages` (at an offset that moves with the value,
/// so that every phase leaves a different page).
fn write(pages: core::ops::Range<usize>, value: u8) {
    let first = addr_of_mut!(PAGES).cast::<[u8; 4096]>();
    for page in pages {
        // SAFETY: `page < TRACK_PAGES`, so the pointer stays inside this image's own
        // static `PAGES`, only touched here by its one thread.
        unsafe {
            write_volatile(
                first.add(page).cast::<u8>().add(usize::from(value) * 8),
                value,
            );
        }
    }
}

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    for phase in 0..TRACK_PHASES {
        let value = u8::try_from(phase % 250).unwrap_or(0) + 1;
        match phase {
            0 => write(0..TRACK_PAGES, value),
            _ if phase <= TRACK_COOL_PHASES => write(0..1, value),
            _ if phase == TRACK_COOL_PHASES + 1 => write(0..TRACK_REWRITTEN + 1, value),
            _ => write(0..TRACK_PAGES, value),
        }
        hypercall::nop();
    }
    0
}
