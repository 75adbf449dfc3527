//! The Linux system calls the tender makes, as raw `syscall` instructions (the tender
//! has no libc), and the kernel structures they take.

use core::arch::asm;

/// System call numbers (x86-64).
pub mod nr {
    pub const MMAP: u64 = 9;
    pub const MPROTECT: u64 = 10;
    pub const RT_SIGACTION: u64 = 13;
    pub const SIGALTSTACK: u64 = 131;
    pub const PRCTL: u64 = 157;
    pub const FUTEX: u64 = 202;
    pub const EXIT_GROUP: u64 = 231;
    pub const SECCOMP: u64 = 317;
    pub const CLOSE_RANGE: u64 = 436;
}

/// Makes system call `number` with up to six arguments; returns the kernel's result
/// (negative: `-errno`).
///
/// # Safety
///
/// The call must be one whose effects on this process's memory the caller accounts for
/// (pointers valid for what the kernel reads or writes).
pub unsafe fn syscall6(number: u64, args: [u64; 6]) -> i64 {
    let result: i64;
    // SAFETY: per the caller; `syscall` clobbers rcx and r11 only, and the kernel
    // preserves every other register.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") number as i64 => result,
            in("rdi") args[0],
            in("rsi") args[1],
            in("rdx") args[2],
            in("r10") args[3],
            in("r8") args[4],
            in("r9") args[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result
}

/// Ends the process with `code`: setup failed (the VMM reports the code).
pub fn exit_group(code: u64) -> ! {
    loop {
        // SAFETY: exit_group does not return and touches no memory.
        unsafe { syscall6(nr::EXIT_GROUP, [code, 0, 0, 0, 0, 0]) };
    }
}

/// `FUTEX_WAIT` and `FUTEX_WAKE`, shared (the VMM is another process): no private flag.
pub const FUTEX_WAIT: u64 = 0;
/// See [`FUTEX_WAIT`].
pub const FUTEX_WAKE: u64 = 1;

/// Waits while `*word == expected` (returns at once otherwise, or on a spurious wake).
pub fn futex_wait(word: *const u32, expected: u32) {
    // SAFETY: the kernel only reads the word, which the caller names in mapped memory.
    unsafe {
        syscall6(
            nr::FUTEX,
            [word as u64, FUTEX_WAIT, u64::from(expected), 0, 0, 0],
        )
    };
}

/// Wakes one waiter on `word`.
pub fn futex_wake(word: *const u32) {
    // SAFETY: FUTEX_WAKE reads nothing and writes nothing in this process.
    unsafe { syscall6(nr::FUTEX, [word as u64, FUTEX_WAKE, 1, 0, 0, 0]) };
}

/// The kernel's `struct sigaction` for `rt_sigaction`.
#[repr(C)]
pub struct KernelSigaction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

/// `SA_SIGINFO`.
pub const SA_SIGINFO: u64 = 4;
/// `SA_ONSTACK`.
pub const SA_ONSTACK: u64 = 0x0800_0000;
/// `SA_RESTORER`.
pub const SA_RESTORER: u64 = 0x0400_0000;

/// The kernel's `stack_t`.
#[repr(C)]
pub struct SignalStack {
    pub sp: u64,
    pub flags: u32,
    pub pad: u32,
    pub size: u64,
}

/// `mmap` protections and flags.
pub mod mmap {
    pub const PROT_RW: u64 = 1 | 2;
    pub const PROT_RWX: u64 = 1 | 2 | 4;
    pub const PROT_RX: u64 = 1 | 4;
    pub const MAP_SHARED: u64 = 1;
    pub const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
}

/// Maps `len` bytes of `fd` from `offset` at exactly `addr`; false on failure.
///
/// # Safety
///
/// Nothing of this process may live at `addr..addr + len` (the mapping refuses to
/// replace one, but a later use of that memory as something else would be unsound).
pub unsafe fn map_fixed(addr: u64, len: u64, prot: u64, fd: i32, offset: u64) -> bool {
    let flags = mmap::MAP_SHARED | mmap::MAP_FIXED_NOREPLACE;
    // SAFETY: per the caller; MAP_FIXED_NOREPLACE never replaces an existing mapping.
    let got = unsafe { syscall6(nr::MMAP, [addr, len, prot, flags, fd as u64, offset]) };
    got as u64 == addr
}
