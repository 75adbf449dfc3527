//! Checkpoint probe: writes `CKPT_PAGES` pages, makes a `Nop` (the host checkpoints
//! there), writes them all again and a second `Nop`, then executes `ud2`. A host that
//! rolls it back to the first `Nop` sees it reach the second `Nop` again.
#![no_std]
#![no_main]

use core::ptr::{addr_of_mut, write_volatile};

use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::CKPT_PAGES;

ankh_guest_rt::entry!(main);

/// The pages the probe writes.
static mut PAGES: [[u8; 4096]; CKPT_PAGES] = [[0; 4096]; CKPT_PAGES];

/// Writes `value` at the start of every page.
fn fill(value: u8) {
    let first = addr_of_mut!(PAGES).cast::<[u8; 4096]>();
    for page in 0..CKPT_PAGES {
        // SAFETY: `page < CKPT_PAGES`, so the pointer stays inside this image's own
        // static `PAGES`, only touched here by its one vCPU; a volatile write keeps
        // the stores in place.
        unsafe { write_volatile(first.add(page).cast::<u8>(), value) };
    }
}

fn main(_boot: &BootInfo) -> u32 {
    fill(1);
    hypercall::nop();
    fill(2);
    hypercall::nop();
    // SAFETY: `ud2` raises #UD, which the runtime's exception stubs report; the VMM
    // never resumes the domain past it.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}
