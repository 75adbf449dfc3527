//! Loads an empty IDT, then executes `ud2`: #UD, #GP and #DF all fail, triple fault.
//! Only in kernel mode: in user mode `lidt` itself is a #GP, reported normally.
#![no_std]
#![no_main]

use core::arch::asm;

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

/// The operand of `lidt`.
#[repr(C, packed)]
struct Descriptor {
    limit: u16,
    base: u64,
}

fn main(_boot: &BootInfo) -> u32 {
    let empty = Descriptor { limit: 0, base: 0 };
    // SAFETY: deliberately breaks exception delivery: with a one-byte IDT no gate can be
    // read, so the `ud2` escalates to a triple fault (a shutdown exit in the VMM) and
    // nothing after it runs. `lidt` only reads the 10-byte descriptor.
    unsafe {
        asm!(
            "lidt [{}]",
            "ud2",
            in(reg) &raw const empty,
            options(noreturn, readonly, nostack),
        )
    }
}
