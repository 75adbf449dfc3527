//! The tender: what a domain of Ankh's process substrate starts as.
//!
//! The VMM starts it with the domain's RAM memfd as fd 3 and the control memfd as fd 4
//! (see `virtio_seep::abi::process`). It maps both (guest RAM read-only when the VMM
//! tracks the guest's writes: `track`), installs the signal handlers that turn every
//! exit of the guest into a report to the VMM (`handler`), closes every file
//! descriptor, locks itself down with the VMM's seccomp program (after which it can
//! only wait on and wake the control page's futex, protect pages of guest RAM and
//! return from signals), waits for its first turn and jumps to the image's entry,
//! exactly as a vCPU would start.
//!
//! Setup failures end the process with a code that says which step failed
//! ([`SetupStep`]); the VMM reports it.
#![no_std]
#![no_main]
// The kernel's ABI passes every argument and result as a 64-bit register, and
// descriptors, signals and error numbers as C ints: the casts between them are the
// interface, checked where a value comes from outside (the VMM's setup, the guest).
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

mod handler;
mod mem;
mod sys;
mod track;

use core::arch::{asm, global_asm};

use virtio_seep::abi::process::{
    ControlPage, BOOT_INFO_ADDR, CONTROL_ADDR, CONTROL_FD, CONTROL_SIZE, FILTER_MAX, FILTER_OFFSET,
    RAM_FD, RAM_START, SETUP_MAGIC, TURN_GUEST,
};

/// The step of the setup that failed: the process's exit code.
#[repr(u64)]
#[derive(Clone, Copy)]
enum SetupStep {
    MapControl = 101,
    BadSetup = 102,
    MapRam = 103,
    SignalStack = 105,
    Signals = 106,
    CloseFds = 107,
    NoNewPrivs = 108,
    Seccomp = 109,
}

fn fail(step: SetupStep) -> ! {
    sys::exit_group(step as u64)
}

/// The stack the signal handler runs on (the guest's own stack may be anything).
const SIGNAL_STACK_SIZE: usize = 64 * 1024;
static mut SIGNAL_STACK: [u8; SIGNAL_STACK_SIZE] = [0; SIGNAL_STACK_SIZE];

/// The stack the setup runs on (the kernel's initial stack is left alone).
const SETUP_STACK_SIZE: usize = 16 * 1024;
static mut SETUP_STACK: [u8; SETUP_STACK_SIZE] = [0; SETUP_STACK_SIZE];

global_asm!(
    ".pushsection .text.tender_start, \"ax\", @progbits",
    ".global _start",
    "_start:",
    "    lea rsp, [rip + {stack} + {size}]",
    "    xor ebp, ebp",
    "    call {setup}",
    "    ud2",
    ".popsection",
    stack = sym SETUP_STACK,
    size = const SETUP_STACK_SIZE,
    setup = sym setup,
);

/// The control page, once mapped.
fn control() -> *mut ControlPage {
    CONTROL_ADDR as *mut ControlPage
}

extern "C" fn setup() -> ! {
    // SAFETY: nothing lives at CONTROL_ADDR in this process (the linker script keeps
    // the tender far above it, and the kernel maps nothing there on its own).
    if !unsafe {
        sys::map_fixed(
            CONTROL_ADDR,
            CONTROL_SIZE,
            sys::mmap::PROT_RW,
            CONTROL_FD,
            0,
        )
    } {
        fail(SetupStep::MapControl);
    }
    // SAFETY: mapped just above, page-aligned; the VMM wrote the setup before the
    // process started and changes it no more.
    let setup = unsafe { (*control()).setup };
    let filter_len = setup.filter_len;
    let valid = setup.magic == SETUP_MAGIC
        && setup.memory_size > RAM_START
        && setup.memory_size <= virtio_seep::abi::layout::MAX_MEMORY_SIZE
        && setup.memory_size % 4096 == 0
        && filter_len > 0
        && filter_len <= FILTER_MAX;
    if !valid {
        fail(SetupStep::BadSetup);
    }
    let ram_len = setup.memory_size - RAM_START;
    // With write tracking every page starts protected: its first write is logged
    // (`track`). The VMM's own mapping stays writable.
    let protection = if setup.track_writes != 0 {
        track::enable();
        sys::mmap::PROT_RX
    } else {
        sys::mmap::PROT_RWX
    };
    // SAFETY: guest RAM's range is below 1 GiB, where the tender has nothing (see the
    // linker script); the mapping refuses to replace anything.
    if !unsafe { sys::map_fixed(RAM_START, ram_len, protection, RAM_FD, RAM_START) } {
        fail(SetupStep::MapRam);
    }
    if let Err(step) = handler::install(
        &raw mut SIGNAL_STACK as u64,
        SIGNAL_STACK_SIZE as u64,
        setup.memory_size,
    ) {
        fail(step);
    }
    // The mappings outlive the memfds' descriptors, and the guest gets nothing to call.
    close_all();
    lock_down(filter_len);
    // SAFETY: the control page is mapped (above) for the process's life.
    let turn = unsafe { &raw const (*control()).turn };
    // SAFETY: `turn` is in the control page mapped above.
    while unsafe { core::ptr::read_volatile(turn) } != TURN_GUEST {
        sys::futex_wait(turn, virtio_seep::abi::process::TURN_VMM);
    }
    // A checkpoint before the first run may have handed pages back already, and wants
    // the x87/SSE state the guest starts with (this one).
    track::apply_reprotect(control(), setup.memory_size);
    // SAFETY: the control page is mapped; FXSAVE writes 512 bytes at the 16-byte
    // aligned `fpu_checkpoint`.
    unsafe {
        let page = control();
        if core::ptr::read_volatile(&raw const (*page).fpu_save) != 0 {
            asm!("fxsave [{0}]", in(reg) &raw mut (*page).fpu_checkpoint, options(nostack));
            core::ptr::write_volatile(&raw mut (*page).fpu_save, 0);
        }
    }
    // SAFETY: the entry is the image's, which the VMM loaded into guest RAM; it expects
    // rdi = the boot information and sets up its own stack. Every other register is
    // cleared so that nothing of the tender leaks into the guest.
    unsafe {
        asm!(
            "xor eax, eax", "xor ebx, ebx", "xor ecx, ecx", "xor edx, edx",
            "xor esi, esi", "xor ebp, ebp", "xor esp, esp",
            "xor r8d, r8d", "xor r9d, r9d", "xor r10d, r10d", "xor r12d, r12d",
            "xor r13d, r13d", "xor r14d, r14d", "xor r15d, r15d",
            "jmp r11",
            in("rdi") BOOT_INFO_ADDR,
            in("r11") setup.entry,
            options(noreturn),
        );
    }
}

fn close_all() {
    // SAFETY: close_range touches no memory of this process.
    if unsafe { sys::syscall6(sys::nr::CLOSE_RANGE, [0, u64::from(u32::MAX), 0, 0, 0, 0]) } < 0 {
        fail(SetupStep::CloseFds);
    }
}

/// No new privileges, then the VMM's seccomp program (at FILTER_OFFSET in the control
/// memfd): from here on the process can only make the calls it lets through.
fn lock_down(filter_len: u64) {
    const PR_SET_NAME: u64 = 15;
    const PR_SET_NO_NEW_PRIVS: u64 = 38;
    // What `ps` shows (the executable's name is the descriptor it was started from).
    static NAME: &[u8] = b"ankh-domain\0";
    // SAFETY: the kernel reads the NUL-terminated name. A failure only leaves the name.
    unsafe {
        sys::syscall6(
            sys::nr::PRCTL,
            [PR_SET_NAME, NAME.as_ptr() as u64, 0, 0, 0, 0],
        )
    };
    const SECCOMP_SET_MODE_FILTER: u64 = 1;
    // SAFETY: prctl with these arguments touches no memory.
    if unsafe { sys::syscall6(sys::nr::PRCTL, [PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0]) } < 0 {
        fail(SetupStep::NoNewPrivs);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    let program: [u64; 2] = [filter_len, CONTROL_ADDR + FILTER_OFFSET];
    // SAFETY: the kernel reads the program (filter_len instructions, bounded by
    // FILTER_MAX so inside the control mapping) and copies it.
    let set = unsafe {
        sys::syscall6(
            sys::nr::SECCOMP,
            [SECCOMP_SET_MODE_FILTER, 0, program.as_ptr() as u64, 0, 0, 0],
        )
    };
    if set < 0 {
        fail(SetupStep::Seccomp);
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    sys::exit_group(100)
}
