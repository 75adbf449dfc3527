//! Hypercalls in a process domain, without a trap: the same calls as the `out` of a VM,
//! made through the control page the VMM shares with this process (protocol in
//! `virtio_seep::abi::process`). A trap on `out` works there too (the tender turns
//! the signal into the same report), but costs a signal delivery and a `sigreturn`,
//! which are dearer than the whole futex handover to the VMM.

use core::arch::global_asm;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};
use core::sync::atomic::{compiler_fence, AtomicU64, Ordering};

use virtio_seep::abi::process::{
    exit_kind, ControlPage, ExitRecord, FPU_CHECKPOINT_OFFSET, FPU_LOAD_OFFSET, FPU_OFFSET,
    FPU_SAVE_OFFSET, REGS_OFFSET, REPROTECT_LEN, REPROTECT_LEN_OFFSET, TURN_GUEST, TURN_OFFSET,
    TURN_VMM, VMM_WAITING_OFFSET,
};

/// The control page's address (0: not a process domain, hypercalls use `out`). Read
/// at every hypercall: in the hot page (see `guest.ld`), which every request touches
/// anyway; anywhere else it would cost a page touch after every exit.
#[link_section = ".bss.ankh_hot"]
static CONTROL: AtomicU64 = AtomicU64::new(0);

/// Nonzero while this domain is inside [`call`] (the tender ignores kicks then; see
/// `ControlPage::in_call`). Written by plain stores and by the assembly below, twice
/// per call: in the hot page, or wherever `.bss` put it (a page of its own in some
/// images), which cost those images a page per call.
#[no_mangle]
#[link_section = ".bss.ankh_hot"]
static mut ANKH_IN_CALL: u8 = 0;

/// Takes the control page's address from the boot information (0 in a VM).
// Called by `_start`, which only images (panic = "abort") have.
#[cfg_attr(not(panic = "abort"), allow(dead_code))]
pub fn init(control: u64) {
    if control == 0 {
        return;
    }
    CONTROL.store(control, Ordering::Relaxed);
    // SAFETY: the VMM named this page; the tender mapped it before the first
    // instruction of the image ran. Only this domain's one thread writes it while the
    // turn is the guest's.
    unsafe {
        write_volatile(
            addr_of_mut!((*(control as *mut ControlPage)).in_call),
            (&raw const ANKH_IN_CALL) as u64,
        );
    }
}

/// The control page, in a process domain.
#[inline]
pub fn control() -> Option<*mut ControlPage> {
    match CONTROL.load(Ordering::Relaxed) {
        0 => None,
        address => Some(address as *mut ControlPage),
    }
}

/// Makes hypercall `port` with `value` and the argument registers `rdi`, `rsi`, `r8`,
/// `r9`, `r10` through `control`.
///
/// Kept out of line and cold: in a VM it never runs, and inlined into every hypercall
/// it would spread the hot code of the IPC path over more pages (each page a request
/// touches costs about 2 us after every VM exit on these hosts).
///
/// # Safety
///
/// As the `out` of the same call: every address in the arguments names memory the VMM
/// may read or write for that call.
#[inline(never)]
#[cold]
pub unsafe fn call(control: *mut ControlPage, port: u16, value: u32, args: [u64; 5]) {
    // SAFETY: ANKH_IN_CALL is this domain's own byte; set before the page is written,
    // so that a kick arriving from here on does not overwrite the report.
    unsafe { write_volatile(&raw mut ANKH_IN_CALL, 1) };
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the control page is mapped for the domain's life and the turn is the
    // guest's: only this thread writes it now.
    unsafe {
        write_volatile(
            addr_of_mut!((*control).exit),
            ExitRecord {
                kind: exit_kind::PORT_WRITE,
                port: u32::from(port),
                size: 4,
                value,
                ..ExitRecord::default()
            },
        );
        let regs = addr_of_mut!((*control).regs);
        write_volatile(addr_of_mut!((*regs).rax), u64::from(value));
        write_volatile(addr_of_mut!((*regs).rdi), args[0]);
        write_volatile(addr_of_mut!((*regs).rsi), args[1]);
        write_volatile(addr_of_mut!((*regs).r8), args[2]);
        write_volatile(addr_of_mut!((*regs).r9), args[3]);
        write_volatile(addr_of_mut!((*regs).r10), args[4]);
        write_volatile(addr_of_mut!((*regs).rdx), u64::from(port));
    }
    compiler_fence(Ordering::SeqCst);
    // SAFETY: the assembly below saves this context into the page, hands over, and
    // comes back with the context the VMM left there: this one, unless a rollback put
    // the domain back at an earlier boundary (whose memory it restored too).
    unsafe { ankh_process_handover(control) };
}

extern "C" {
    /// See [`call`]: save, hand over, wait, load, continue.
    fn ankh_process_handover(control: *mut ControlPage);
}

// Regs field offsets (the order of `kvm_regs`).
const RAX: usize = REGS_OFFSET;
const RBX: usize = REGS_OFFSET + 8;
const RCX: usize = REGS_OFFSET + 16;
const RDX: usize = REGS_OFFSET + 24;
const RSI: usize = REGS_OFFSET + 32;
const RDI: usize = REGS_OFFSET + 40;
const RSP: usize = REGS_OFFSET + 48;
const RBP: usize = REGS_OFFSET + 56;
const R8: usize = REGS_OFFSET + 64;
const R12: usize = REGS_OFFSET + 96;
const RIP: usize = REGS_OFFSET + 128;
const RFLAGS: usize = REGS_OFFSET + 136;

// rdi = the control page. The context saved is the one a plain `ret` would give the
// caller: rip = the return address, rsp = above it. The x87/SSE state stays in the CPU,
// which the host kernel keeps across the wait; it goes through the page only when the
// VMM asks (`fpu_load` after a rollback, `fpu_save` after a checkpoint). Given the turn back, every general
// register, the flags and rip come from the page; the last store clears the in-call
// byte, after which a kick may be reported again (its report then saves and restores
// exactly the state between here and the `ret`).
global_asm!(
    ".pushsection .text.ankh_process_handover, \"ax\", @progbits",
    ".global ankh_process_handover",
    "ankh_process_handover:",
    "    mov [rdi + {rbx}], rbx",
    "    mov [rdi + {rbp}], rbp",
    "    mov [rdi + {r12}], r12",
    "    mov [rdi + {r12} + 8], r13",
    "    mov [rdi + {r12} + 16], r14",
    "    mov [rdi + {r12} + 24], r15",
    "    mov rax, [rsp]",
    "    mov [rdi + {rip}], rax",
    "    lea rax, [rsp + 8]",
    "    mov [rdi + {rsp}], rax",
    "    pushfq",
    "    pop rax",
    "    mov [rdi + {rflags}], rax",
    "    mov r12, rdi",
    // The turn is the VMM's (xchg: a full barrier before reading vmm_waiting); wake
    // the VMM only if it sleeps.
    "    mov eax, {turn_vmm}",
    "    xchg dword ptr [r12 + {turn}], eax",
    "    cmp dword ptr [r12 + {waiting}], 0",
    "    je 2f",
    // futex(&turn, FUTEX_WAKE, 1)
    "    lea rdi, [r12 + {turn}]",
    "    mov esi, 1",
    "    mov edx, 1",
    "    mov eax, 202",
    "    syscall",
    "2:",
    "    cmp dword ptr [r12 + {turn}], {turn_guest}",
    "    je 3f",
    // futex(&turn, FUTEX_WAIT, TURN_VMM, no timeout)
    "    lea rdi, [r12 + {turn}]",
    "    xor esi, esi",
    "    mov edx, {turn_vmm}",
    "    xor r10d, r10d",
    "    mov eax, 202",
    "    syscall",
    "    jmp 2b",
    "3:",
    // A rollback's x87/SSE state, then the checkpoint's (see `fpu_save`).
    "    cmp dword ptr [r12 + {fpu_load}], 0",
    "    je 4f",
    "    fxrstor [r12 + {fpu}]",
    "    mov dword ptr [r12 + {fpu_load}], 0",
    "4:",
    "    cmp dword ptr [r12 + {fpu_save}], 0",
    "    je 5f",
    "    fxsave [r12 + {fpu_checkpoint}]",
    "    mov dword ptr [r12 + {fpu_save}], 0",
    "5:",
    "    mov rax, r12",
    "    mov rsp, [rax + {rsp}]",
    // Pages the VMM hands back for write tracking are protected before the guest
    // runs on (`ankh_process_reprotect`), on the stack of the context it resumes
    // (below whose pointer nothing lives: the current one may have been rolled back).
    "    cmp dword ptr [r12 + {reprotect_len}], 0",
    "    je 6f",
    "    and rsp, -16",
    "    mov rdi, r12",
    "    call {reprotect}",
    "    mov rax, r12",
    "    mov rsp, [rax + {rsp}]",
    "6:",
    "    push qword ptr [rax + {rip}]",
    "    push qword ptr [rax + {rflags}]",
    "    mov rbx, [rax + {rbx}]",
    "    mov rcx, [rax + {rcx}]",
    "    mov rdx, [rax + {rdx}]",
    "    mov rsi, [rax + {rsi}]",
    "    mov rdi, [rax + {rdi}]",
    "    mov rbp, [rax + {rbp}]",
    "    mov r8, [rax + {r8}]",
    "    mov r9, [rax + {r8} + 8]",
    "    mov r10, [rax + {r8} + 16]",
    "    mov r11, [rax + {r8} + 24]",
    "    mov r12, [rax + {r12}]",
    "    mov r13, [rax + {r12} + 8]",
    "    mov r14, [rax + {r12} + 16]",
    "    mov r15, [rax + {r12} + 24]",
    "    mov rax, [rax + {rax}]",
    "    mov byte ptr [rip + ANKH_IN_CALL], 0",
    "    popfq",
    "    ret",
    ".popsection",
    rax = const RAX,
    rbx = const RBX,
    rcx = const RCX,
    rdx = const RDX,
    rsi = const RSI,
    rdi = const RDI,
    rsp = const RSP,
    rbp = const RBP,
    r8 = const R8,
    r12 = const R12,
    rip = const RIP,
    rflags = const RFLAGS,
    fpu = const FPU_OFFSET,
    fpu_checkpoint = const FPU_CHECKPOINT_OFFSET,
    fpu_save = const FPU_SAVE_OFFSET,
    fpu_load = const FPU_LOAD_OFFSET,
    turn = const TURN_OFFSET,
    waiting = const VMM_WAITING_OFFSET,
    turn_vmm = const TURN_VMM,
    turn_guest = const TURN_GUEST,
    reprotect_len = const REPROTECT_LEN_OFFSET,
    reprotect = sym ankh_process_reprotect,
);

/// Makes the ranges of the control page's `reprotect` list read-only (and executable,
/// as guest RAM always is) and clears the list: the pages the VMM stopped copying at
/// each checkpoint, whose next write the tender must log (see the `tender`'s `track`).
/// A range that cannot be protected is reported in `reprotect_failed` (the VMM then
/// keeps copying it). Called by the handover, the turn the guest's again.
extern "C" fn ankh_process_reprotect(control: *mut ControlPage) {
    // SAFETY: the control page is mapped for the domain's life; the VMM leaves the
    // list alone while the turn is the guest's.
    let len = unsafe { read_volatile(addr_of!((*control).reprotect_len)) } as usize;
    let mut failed = false;
    for index in 0..len.min(REPROTECT_LEN) {
        // SAFETY: as above; `index` is inside the list.
        let range = unsafe { read_volatile(addr_of!((*control).reprotect[index])) };
        let (start, len) = (u64::from(range.first) * 4096, u64::from(range.count) * 4096);
        failed |= range.count == 0 || !mprotect(start, len, PROT_READ_EXEC);
    }
    // SAFETY: as above.
    unsafe {
        if failed {
            write_volatile(addr_of_mut!((*control).reprotect_failed), 1);
        }
        write_volatile(addr_of_mut!((*control).reprotect_len), 0);
    }
}

/// `PROT_READ | PROT_EXEC`: guest RAM whose next write faults (and is logged).
pub const PROT_READ_EXEC: u64 = 1 | 4;
/// `PROT_READ | PROT_WRITE | PROT_EXEC`: guest RAM written without a fault.
pub const PROT_READ_WRITE_EXEC: u64 = 1 | 2 | 4;

/// `mprotect` of `len` bytes of guest RAM from `start` (the seccomp filter of a domain
/// that takes checkpoints allows exactly that); whether it succeeded.
pub fn mprotect(start: u64, len: u64, protection: u64) -> bool {
    const MPROTECT: i64 = 10;
    let result: i64;
    // SAFETY: mprotect of guest RAM (the seccomp filter refuses anything else)
    // touches no memory; `syscall` clobbers rcx and r11 only.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") MPROTECT => result,
            in("rdi") start,
            in("rsi") len,
            in("rdx") protection,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    result == 0
}
