//! The tender: what a domain of Ankh's process substrate starts as.
//!
//! The VMM starts it with the domain's RAM memfd as fd 3 and the control memfd as fd 4
//! (see `virtio_seep::abi::process`). It maps both, registers guest RAM for
//! userfaultfd write-protection (so the VMM can find the pages the guest writes),
//! installs the signal handlers that turn every exit of the guest into a report to the
//! VMM (`handler`), closes every file descriptor but the userfaultfd, locks itself
//! down with the VMM's seccomp program (after which it can only wait on and wake the
//! control page's futex and return from signals), waits for its first turn and jumps
//! to the image's entry, exactly as a vCPU would start.
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
    Userfaultfd = 104,
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
    // SAFETY: guest RAM's range is below 1 GiB, where the tender has nothing (see the
    // linker script); the mapping refuses to replace anything.
    if !unsafe { sys::map_fixed(RAM_START, ram_len, sys::mmap::PROT_RWX, RAM_FD, RAM_START) } {
        fail(SetupStep::MapRam);
    }
    if setup.track_writes != 0 && !track_writes(RAM_START, ram_len) {
        fail(SetupStep::Userfaultfd);
    }
    if let Err(step) = handler::install(
        &raw mut SIGNAL_STACK as u64,
        SIGNAL_STACK_SIZE as u64,
        setup.memory_size,
    ) {
        fail(step);
    }
    // Keep only the userfaultfd (its registration lasts as long as it is open): the
    // mappings outlive the memfds' descriptors, and the guest gets nothing to call.
    close_all_but_userfaultfd();
    lock_down(filter_len);
    // SAFETY: the control page is mapped (above) for the process's life.
    let turn = unsafe { &raw const (*control()).turn };
    // SAFETY: `turn` is in the control page mapped above.
    while unsafe { core::ptr::read_volatile(turn) } != TURN_GUEST {
        sys::futex_wait(turn, virtio_seep::abi::process::TURN_VMM);
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

/// The userfaultfd, kept open for the process's life.
static mut USERFAULTFD: i64 = -1;

/// Registers guest RAM for asynchronous write-protection: a write to a protected page
/// unprotects it without a fault to serve, and the VMM's PAGEMAP_SCAN of this process
/// finds (and protects again) the present pages written since its last scan. A page
/// that becomes present (its first touch) is unprotected, so the next scan copies it
/// once, written or not. Unpopulated pages are deliberately not protected ahead
/// (`WP_UNPOPULATED`): on a memfd that fills the page tables of the whole range with
/// markers, and every scan then walks all of it (64 MiB for VFS: about 30 us more per
/// checkpoint here) instead of the pages the domain touched.
fn track_writes(start: u64, len: u64) -> bool {
    use sys::uffd;
    // SAFETY: userfaultfd takes flags only.
    let fd = unsafe {
        sys::syscall6(
            sys::nr::USERFAULTFD,
            [uffd::O_CLOEXEC | uffd::USER_MODE_ONLY, 0, 0, 0, 0, 0],
        )
    };
    if fd < 0 {
        return false;
    }
    let fd = fd as u64;
    let mut api = [
        uffd::API,
        uffd::FEATURE_WP_ASYNC | uffd::FEATURE_WP_SHMEM,
        0,
    ];
    let mut register = [start, len, uffd::REGISTER_MODE_WP, 0];
    for (request, arg) in [
        (uffd::IOCTL_API, api.as_mut_ptr()),
        (uffd::IOCTL_REGISTER, register.as_mut_ptr()),
    ] {
        // SAFETY: each argument is the structure its request reads and writes, owned
        // by this frame.
        if unsafe { sys::syscall6(sys::nr::IOCTL, [fd, request, arg as u64, 0, 0, 0]) } < 0 {
            return false;
        }
    }
    // SAFETY: single-threaded setup, before any signal handler runs.
    unsafe { USERFAULTFD = fd as i64 };
    true
}

fn close_all_but_userfaultfd() {
    // SAFETY: single-threaded setup.
    let keep = unsafe { USERFAULTFD };
    let ranges: [(u64, u64); 2] = if keep >= 0 {
        let keep = keep as u64;
        [(0, keep.saturating_sub(1)), (keep + 1, u64::from(u32::MAX))]
    } else {
        [(0, u64::from(u32::MAX)), (1, 0)]
    };
    for (first, last) in ranges {
        if first > last {
            continue;
        }
        // SAFETY: close_range touches no memory of this process.
        if unsafe { sys::syscall6(sys::nr::CLOSE_RANGE, [first, last, 0, 0, 0, 0]) } < 0 {
            fail(SetupStep::CloseFds);
        }
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
