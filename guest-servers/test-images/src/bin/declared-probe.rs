//! Declared-writes probe: makes a `Nop`, touches and names [`DECLARED_PAGES`] pages of its own a
//! declared region (`ankh_guest_rt::declared`: the domain then logs their writes
//! itself; the host may roll it back to the first `Nop`, and it names the same region
//! again), makes a `Nop`, then [`DECLARED_PHASES`] phases,
//! each declaring and writing some of the pages and ending with a `Nop` (the host
//! checkpoints there, and may roll a phase back and let it run again). Phase 0 writes
//! every page, more than a process domain's write log holds, so the log overflows;
//! the others write page 0 and one more page each. Then it exits with 0 when the
//! region was declared, 1 when it was not (a domain without checkpoints, or a VM whose
//! dirty log is not KVM's dirty ring).
#![no_std]
#![no_main]

use core::ptr::{addr_of_mut, write_volatile};

use ankh_guest_rt::{declared, hypercall, BootInfo};
use ankh_test_images::expect::{DECLARED_PAGES, DECLARED_PHASES};

ankh_guest_rt::entry!(main);

/// The pages, each a page of its own.
#[repr(C, align(4096))]
struct Pages([[u8; 4096]; DECLARED_PAGES]);

static mut PAGES: Pages = Pages([[0; 4096]; DECLARED_PAGES]);

/// Declares and writes `value` into each page of `pages` (at an offset that moves
/// with the value, so that every phase leaves a different page).
fn write(pages: impl Iterator<Item = usize>, value: u8) {
    let first = addr_of_mut!(PAGES).cast::<[u8; 4096]>();
    for page in pages {
        // SAFETY: `page < DECLARED_PAGES`, so the pointer stays inside this image's own
        // static `PAGES`, only touched here by its one thread.
        unsafe {
            let at = first.add(page).cast::<u8>().add(usize::from(value) * 8);
            declared::will_write(at as usize, 1);
            write_volatile(at, value);
        }
    }
}

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    // Every page touched once before the region is named: a VM's first access to a
    // page makes KVM set the accessed and dirty bits of its page-table entry, a logged
    // write to a page-table page, which is not one of the region's.
    let first = addr_of_mut!(PAGES).cast::<[u8; 4096]>();
    for page in 0..DECLARED_PAGES {
        // SAFETY: inside this image's own static `PAGES`, only touched by this thread.
        unsafe { write_volatile(first.add(page).cast::<u8>(), 0) };
    }
    let start = addr_of_mut!(PAGES) as usize;
    let is_declared = declared::region(start, DECLARED_PAGES * 4096);
    hypercall::nop();
    for phase in 0..DECLARED_PHASES {
        let value = u8::try_from(phase % 250).unwrap_or(0) + 1;
        match phase {
            0 => write(0..DECLARED_PAGES, value),
            _ => write([0, 1 + phase % (DECLARED_PAGES - 1)].into_iter(), value),
        }
        hypercall::nop();
    }
    u32::from(!is_declared)
}
