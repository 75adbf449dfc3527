//! The process substrate: how a domain that is a Linux process (not a VM) talks to the
//! VMM. Shared by the VMM and the *tender*, the small static program that each process
//! domain starts as (`guest-servers/tender`).
//!
//! The guest image is the very same ELF as on the KVM substrate. The tender maps the
//! domain's RAM (a memfd the VMM maps too) at the guest-physical addresses, so
//! virtual = physical as in a VM, installs signal handlers and a seccomp filter, and
//! jumps to the image's entry. Whatever the VM would turn into an exit (a hypercall's
//! `out`, an `in`, `hlt`, a CPU exception, an access to the device window) reaches the
//! tender as a signal; the handler writes an [`ExitRecord`] with the guest's registers
//! into the [`ControlPage`] (a second memfd, outside guest RAM and outside checkpoints),
//! hands the turn to the VMM through the futex word [`ControlPage::turn`], waits for
//! it back, loads the registers the VMM left there and returns into the guest.
//!
//! The runtime makes its own hypercalls without a trap (`BootInfo::process_control`
//! tells it where the page is): it sets its in-call byte ([`ControlPage::in_call`]),
//! writes an [`ExitRecord`] (a 4-byte port write, `insn_len` 0) and the argument
//! registers, saves its callee-saved registers, stack pointer, return address and
//! flags, hands the turn over and waits; given the turn back, it applies the VMM's
//! requests ([`ControlPage::reprotect`], [`ControlPage::fpu_load`],
//! [`ControlPage::fpu_save`]), loads every register from the page and continues where
//! they say: after the call, or wherever a rollback put it. A signal-path exit and a
//! call look the same to the VMM.
//!
//! Process address space of a domain:
//! ```text
//! 0x0001_0000 .. memory_size   guest RAM (the memfd from offset 0x1_0000, shared, RWX)
//! 0x0001_0000                  boot information (the KVM layout's low area is unused)
//! 0x0010_0000                  the image, as in a VM
//! 0x1_0000_0000 (4 GiB)        the device window: not mapped, every access is a fault
//!                              the VMM emulates (MMIO)
//! TENDER_BASE (1.75 GiB)       the tender's code, data and signal stack
//! CONTROL_ADDR                 the control page and the seccomp program (second memfd)
//! ```

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// First guest-physical address a process domain maps: the KVM layout's GDT, page
/// tables, IDT and exception stack (below this) have no use in a process.
pub const RAM_START: u64 = 0x1_0000;

/// Where the VMM writes a process domain's boot information (passed in `rdi`).
pub const BOOT_INFO_ADDR: u64 = RAM_START;

/// Where the tender maps the control memfd (page 0: [`ControlPage`], page 1: the
/// seccomp program): high in the address space, away from every address a guest of
/// the KVM layout could mean (a guest that finds it can only break its own domain:
/// the VMM validates every report as guest input).
pub const CONTROL_ADDR: u64 = 0x6000_0000_0000;

/// Bytes of the control memfd.
pub const CONTROL_SIZE: u64 = 0x2000;

/// Offset of the seccomp program (an array of `sock_filter`) in the control memfd.
pub const FILTER_OFFSET: u64 = 0x1000;

/// Most seccomp instructions the control memfd holds.
pub const FILTER_MAX: u64 = (CONTROL_SIZE - FILTER_OFFSET) / 8;

/// The tender's link address (code, data, its signal stack): above the largest guest
/// RAM and below 2 GiB, where the small code model of a static executable reaches.
pub const TENDER_BASE: u64 = 0x7000_0000;

/// File descriptor of the guest RAM memfd when the tender starts.
pub const RAM_FD: i32 = 3;

/// File descriptor of the control memfd when the tender starts.
pub const CONTROL_FD: i32 = 4;

/// Value of [`ControlPage::turn`] while the guest runs (or should).
pub const TURN_GUEST: u32 = 0;

/// Value of [`ControlPage::turn`] while the VMM holds the domain (an exit is reported).
pub const TURN_VMM: u32 = 1;

/// Magic value of [`Setup::magic`].
pub const SETUP_MAGIC: u64 = u64::from_le_bytes(*b"ANKHPROC");

/// The general registers of the guest, in the order of KVM's `kvm_regs`.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct Regs {
    /// rax
    pub rax: u64,
    /// rbx
    pub rbx: u64,
    /// rcx
    pub rcx: u64,
    /// rdx
    pub rdx: u64,
    /// rsi
    pub rsi: u64,
    /// rdi
    pub rdi: u64,
    /// rsp
    pub rsp: u64,
    /// rbp
    pub rbp: u64,
    /// r8
    pub r8: u64,
    /// r9
    pub r9: u64,
    /// r10
    pub r10: u64,
    /// r11
    pub r11: u64,
    /// r12
    pub r12: u64,
    /// r13
    pub r13: u64,
    /// r14
    pub r14: u64,
    /// r15
    pub r15: u64,
    /// rip
    pub rip: u64,
    /// rflags
    pub rflags: u64,
}

/// What the tender needs to start the domain, written by the VMM before it runs.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct Setup {
    /// Always [`SETUP_MAGIC`].
    pub magic: u64,
    /// Bytes of guest RAM (the memfd's size).
    pub memory_size: u64,
    /// The image's entry point.
    pub entry: u64,
    /// Instructions of the seccomp program at [`FILTER_OFFSET`].
    pub filter_len: u64,
    /// Nonzero: track the pages the guest writes (checkpoints): guest RAM starts
    /// read-only (and executable), and the first write to a page is logged in
    /// [`ControlPage::written_log`] (see [`ControlPage::reprotect`]).
    pub track_writes: u64,
}

/// Why the guest stopped ([`ExitRecord::kind`]).
pub mod exit_kind {
    /// `out`: `port`, `size`, `value` (a hypercall when it names one).
    pub const PORT_WRITE: u32 = 1;
    /// `in`: `port`, `size`.
    pub const PORT_READ: u32 = 2;
    /// `hlt`.
    pub const HLT: u32 = 3;
    /// A CPU exception: `vector`, `error_code`, `address` (the page fault address).
    pub const EXCEPTION: u32 = 4;
    /// An access to an unmapped address that may be the device window: `address`; the
    /// VMM decodes the instruction at `rip`.
    pub const MEMORY: u32 = 5;
    /// A system call the seccomp filter refused: `value` is its number.
    pub const SYSCALL: u32 = 6;
    /// The VMM's kick (preemption or watchdog) arrived.
    pub const KICKED: u32 = 7;
    /// A signal the tender cannot explain: `value` is its number.
    pub const SIGNAL: u32 = 8;
}

/// How a debug exception (#DB, vector 1) of a process domain came: the `si_code` of
/// its SIGTRAP, in [`ExitRecord::value`].
pub mod debug_trap {
    /// A single-step: the trap flag was set in the guest's flags.
    pub const SINGLE_STEP: u32 = 2;
    /// An execute breakpoint the VMM set on the process through a perf event
    /// (`TRAP_PERF`), at the hit count it asked for.
    pub const BREAKPOINT: u32 = 6;
}

/// One exit of the guest, written by the tender's signal handler.
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ExitRecord {
    /// One of [`exit_kind`].
    pub kind: u32,
    /// Port of a port access.
    pub port: u32,
    /// Bytes of a port access.
    pub size: u32,
    /// Value of a port write, number of a refused system call or of a signal; for a
    /// debug exception (vector 1), how it came ([`debug_trap`]).
    pub value: u32,
    /// Exception vector (the CPU's trap number).
    pub vector: u64,
    /// The exception's error code.
    pub error_code: u64,
    /// The faulting address of a page fault or memory exit.
    pub address: u64,
    /// Bytes of the instruction that exited, when the tender decoded it (port accesses,
    /// `hlt`): the VMM adds it to `rip` to resume after it.
    pub insn_len: u64,
}

/// The page the tender and the VMM share (see the module documentation).
#[derive(Clone, Copy, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct ControlPage {
    /// The futex word: [`TURN_GUEST`] or [`TURN_VMM`].
    pub turn: u32,
    /// Nonzero while the VMM sleeps on [`ControlPage::turn`]: a domain handing the turn
    /// over wakes it only then (otherwise the VMM, on the same CPU, is merely preempted
    /// and sees the turn when it runs). The VMM sets it before it checks the turn and
    /// sleeps; the domain stores the turn before it reads this, both with a full
    /// barrier, so at least one of them sees the other's store.
    pub vmm_waiting: u32,
    /// How the tender starts the domain.
    pub setup: Setup,
    /// The last exit.
    pub exit: ExitRecord,
    /// The guest's registers at the exit; the tender loads them back when it gets the
    /// turn again, so the VMM resumes the guest wherever it writes here.
    pub regs: Regs,
    /// The guest's x87/SSE state (FXSAVE layout): written by the tender at a signal
    /// exit and loaded back when it resumes the guest; written by the VMM for a
    /// rollback, and then loaded by whoever resumes the guest (see
    /// [`ControlPage::fpu_load`]).
    pub fpu: [u8; 512],
    /// The guest's x87/SSE state when it resumed from the exit the VMM took a
    /// checkpoint at (see [`ControlPage::fpu_save`]).
    pub fpu_checkpoint: [u8; 512],
    /// The address of the runtime's "in a call" byte (0: none). While it is nonzero the
    /// guest is inside a hypercall of its runtime, writing this page itself: the tender
    /// then ignores a kick, whose report would overwrite the call's (the call is about
    /// to reach the VMM anyway).
    pub in_call: u64,
    /// Set by the VMM at a checkpoint: whoever resumes the guest saves its x87/SSE
    /// state (the one it resumes with, which is the checkpoint's) into
    /// [`ControlPage::fpu_checkpoint`] and clears this. The runtime's calls leave that
    /// state in the CPU otherwise (the host kernel keeps it across the handover): an
    /// FXSAVE and an FXRSTOR at every call cost 100 to 170 ns here.
    pub fpu_save: u32,
    /// Set by the VMM at a rollback: whoever resumes the guest loads its x87/SSE state
    /// from [`ControlPage::fpu`] (before a [`ControlPage::fpu_save`]) and clears this.
    pub fpu_load: u32,
    /// Entries of [`ControlPage::written_log`] in use. The tender appends while the
    /// guest runs; the VMM reads and clears the log while the turn is its own.
    pub written_len: u32,
    /// Nonzero when a write could not be logged (the log was full, or the page could
    /// not be unprotected alone): the VMM must then find the written pages some other
    /// way (the process's writable mappings) before it trusts the log again.
    pub written_overflow: u32,
    /// Entries of [`ControlPage::reprotect`] to apply before the guest runs again.
    /// Written by the VMM while the turn is its own; whoever resumes the guest (the
    /// tender's handler, or the runtime's call path) protects the ranges and clears it.
    pub reprotect_len: u32,
    /// Nonzero when a range of [`ControlPage::reprotect`] could not be protected: the
    /// VMM keeps treating its pages as written.
    pub reprotect_failed: u32,
    /// Pages the guest tracks itself (*declared* writes), set once by its runtime: it
    /// makes them writable and logs each page in [`ControlPage::written_log`] before
    /// it writes it, instead of taking a write fault per page. The VMM reads the
    /// first valid range it finds here and never protects those pages again; a write
    /// into them the guest did not log is missed by the guest's own checkpoints only.
    pub declared: PageRange,
    /// Pages (guest-physical page numbers) the guest wrote for the first time since
    /// they were last protected: the tender's handler logs one at each write fault on
    /// a protected page of guest RAM, then makes the page writable and lets the guest
    /// write again.
    pub written_log: [u32; WRITTEN_LOG_LEN],
    /// Ranges of guest RAM that have cooled down (unwritten for a while): made
    /// read-only again, so that their next write is logged.
    pub reprotect: [PageRange; REPROTECT_LEN],
}

/// Entries of [`ControlPage::written_log`].
pub const WRITTEN_LOG_LEN: usize = 320;

/// Entries of [`ControlPage::reprotect`].
pub const REPROTECT_LEN: usize = 128;

/// Pages `first .. first + count` (guest-physical page numbers).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct PageRange {
    /// First page.
    pub first: u32,
    /// Pages.
    pub count: u32,
}

/// Offset of [`ControlPage::turn`] (for the runtime's assembly).
pub const TURN_OFFSET: usize = core::mem::offset_of!(ControlPage, turn);
/// Offset of [`ControlPage::vmm_waiting`].
pub const VMM_WAITING_OFFSET: usize = core::mem::offset_of!(ControlPage, vmm_waiting);
/// Offset of [`ControlPage::regs`].
pub const REGS_OFFSET: usize = core::mem::offset_of!(ControlPage, regs);
/// Offset of [`ControlPage::fpu_save`].
pub const FPU_SAVE_OFFSET: usize = core::mem::offset_of!(ControlPage, fpu_save);
/// Offset of [`ControlPage::fpu_load`].
pub const FPU_LOAD_OFFSET: usize = core::mem::offset_of!(ControlPage, fpu_load);
/// Offset of [`ControlPage::fpu_checkpoint`] (16-byte aligned, for FXSAVE).
pub const FPU_CHECKPOINT_OFFSET: usize = core::mem::offset_of!(ControlPage, fpu_checkpoint);
/// Offset of [`ControlPage::reprotect_len`] (the runtime checks it after each call).
pub const REPROTECT_LEN_OFFSET: usize = core::mem::offset_of!(ControlPage, reprotect_len);
/// Offset of [`ControlPage::fpu`] (16-byte aligned, for FXSAVE).
pub const FPU_OFFSET: usize = core::mem::offset_of!(ControlPage, fpu);

const _: () = assert!(FPU_OFFSET.is_multiple_of(16));
const _: () = assert!(FPU_CHECKPOINT_OFFSET.is_multiple_of(16));

const _: () = assert!(core::mem::size_of::<ControlPage>() as u64 <= FILTER_OFFSET);
const _: () = assert!(BOOT_INFO_ADDR >= RAM_START);
const _: () = assert!(
    CONTROL_ADDR > super::layout::DEVICE_WINDOW_BASE + super::layout::DEVICE_WINDOW_MAP_SIZE
);
const _: () = assert!(TENDER_BASE >= super::layout::MAX_MEMORY_SIZE && TENDER_BASE < 1 << 31);
