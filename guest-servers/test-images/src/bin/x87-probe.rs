//! x87 probe: changes its x87 state between checkpoints (x87 is not SSE: it runs on
//! every host). Makes a `Nop` (first checkpoint), loads another control word and
//! pushes 1 and pi onto the register stack, makes a second `Nop` (the host checkpoints
//! again, with the x87 state changed), resets the x87 unit (`fninit`) and executes
//! `ud2`. A host that rolls it back to the second `Nop` must give it back the control
//! word and the two registers (it checks the control word itself after that `Nop`).
#![no_std]
#![no_main]

use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::{X87_PROBE_CONTROL_WORD, X87_PROBE_LOST};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    hypercall::nop();
    let control = X87_PROBE_CONTROL_WORD;
    // SAFETY: x87 instructions on the x87 register stack only (this image has no other
    // x87 user); `fldcw` reads the two bytes of `control`, which lives across the asm.
    unsafe {
        core::arch::asm!(
            "fninit",
            "fldcw word ptr [{0}]",
            "fld1",
            "fldpi",
            in(reg) &control,
            out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
            out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            options(nostack, readonly),
        );
    }
    hypercall::nop();
    // After the second `Nop` (and after a rollback to it) the control word must be
    // the one loaded above: otherwise the state was lost, and the probe exits with
    // `X87_PROBE_LOST` instead of faulting.
    let mut now: u16 = 0;
    // SAFETY: `fnstcw` stores the two bytes of the control word into `now`.
    unsafe { core::arch::asm!("fnstcw word ptr [{0}]", in(reg) &mut now, options(nostack)) };
    if now != X87_PROBE_CONTROL_WORD {
        return X87_PROBE_LOST;
    }
    // SAFETY: resets the x87 unit, which only this image uses.
    unsafe {
        core::arch::asm!(
            "fninit",
            out("st(0)") _, out("st(1)") _, out("st(2)") _, out("st(3)") _,
            out("st(4)") _, out("st(5)") _, out("st(6)") _, out("st(7)") _,
            options(nomem, nostack),
        );
    }
    // SAFETY: `ud2` raises #UD, which the runtime's exception stubs report; the VMM
    // never resumes the domain past it.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack, noreturn)) }
}
