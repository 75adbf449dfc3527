//! The signal handler: every exit of the guest (a hypercall's `out`, an `in`, `hlt`, a
//! CPU exception, a refused system call, the VMM's kick) arrives here as a signal. The
//! handler writes an exit record and the guest's registers into the control page,
//! hands the turn to the VMM, waits until it is given back, and returns into the guest
//! with the registers (and x87 state) the VMM left in the control page.

use core::arch::global_asm;
use core::ptr::{addr_of, addr_of_mut, read_volatile, write_volatile};

use virtio_seep::abi::process::{
    debug_trap, exit_kind, ControlPage, ExitRecord, Regs, RAM_START, TURN_GUEST, TURN_VMM,
};

use crate::sys::{self, KernelSigaction, SignalStack};
use crate::track;
use crate::SetupStep;

const SIGILL: u64 = 4;
const SIGTRAP: u64 = 5;
const SIGBUS: u64 = 7;
const SIGFPE: u64 = 8;
const SIGUSR1: u64 = 10;
const SIGSEGV: u64 = 11;
const SIGSYS: u64 = 31;

/// The vector of the debug exception (#DB).
const DEBUG_VECTOR: u64 = 1;

/// The signals the handler takes: the CPU's exceptions, the refused system calls and
/// the VMM's kick (SIGUSR1).
const HANDLED: [u64; 7] = [SIGILL, SIGTRAP, SIGBUS, SIGFPE, SIGUSR1, SIGSEGV, SIGSYS];

/// One past the last guest RAM byte (set once by `install`).
static mut MEMORY_END: u64 = 0;

// The restorer the kernel returns to after the handler: rt_sigreturn.
global_asm!(
    ".global tender_restorer",
    "tender_restorer:",
    "    mov eax, 15",
    "    syscall",
    "    ud2",
);

extern "C" {
    fn tender_restorer();
}

/// Installs the alternate signal stack and the handlers.
pub fn install(stack: u64, size: u64, memory_size: u64) -> Result<(), SetupStep> {
    // SAFETY: single-threaded setup, before any handler can run.
    unsafe { MEMORY_END = memory_size };
    let alt = SignalStack {
        sp: stack,
        flags: 0,
        pad: 0,
        size,
    };
    // SAFETY: the kernel reads `alt`; the stack it names is the tender's static buffer,
    // used for nothing else.
    if unsafe { sys::syscall6(sys::nr::SIGALTSTACK, [addr_of!(alt) as u64, 0, 0, 0, 0, 0]) } < 0 {
        return Err(SetupStep::SignalStack);
    }
    let action = KernelSigaction {
        handler: on_signal as *const () as u64,
        flags: sys::SA_SIGINFO | sys::SA_ONSTACK | sys::SA_RESTORER,
        restorer: tender_restorer as *const () as u64,
        // Every signal is blocked while the handler runs: a kick that arrives during
        // an exit is taken after it, as one more (spurious) kick.
        mask: u64::MAX,
    };
    for signal in HANDLED {
        // SAFETY: the kernel reads `action` (8-byte signal set).
        let set = unsafe {
            sys::syscall6(
                sys::nr::RT_SIGACTION,
                [signal, addr_of!(action) as u64, 0, 8, 0, 0],
            )
        };
        if set < 0 {
            return Err(SetupStep::Signals);
        }
    }
    Ok(())
}

// Offsets in the kernel's ucontext and siginfo (x86-64).
const UC_MCONTEXT: usize = 40;
const SI_CODE: usize = 8;
const SI_ADDR: usize = 16;
const SI_SYSCALL: usize = 24;

// Indexes of the registers in the mcontext's gregs.
const R8: usize = 0;
const RDI: usize = 8;
const RSI: usize = 9;
const RBP: usize = 10;
const RBX: usize = 11;
const RDX: usize = 12;
const RAX: usize = 13;
const RCX: usize = 14;
const RSP: usize = 15;
const RIP: usize = 16;
const EFL: usize = 17;
const ERR: usize = 19;
const TRAPNO: usize = 20;
const CR2: usize = 22;
const FPSTATE: usize = 23;

/// A signal's register file: the mcontext's general registers.
struct Frame(*mut u64);

impl Frame {
    fn get(&self, index: usize) -> u64 {
        // SAFETY: `index` is below the mcontext's 24 words, which the kernel wrote.
        unsafe { read_volatile(self.0.add(index)) }
    }

    fn set(&self, index: usize, value: u64) {
        // SAFETY: as in `get`; the kernel loads these words back at sigreturn (and
        // sanitizes the flags and segments itself).
        unsafe { write_volatile(self.0.add(index), value) }
    }

    fn regs(&self) -> Regs {
        Regs {
            rax: self.get(RAX),
            rbx: self.get(RBX),
            rcx: self.get(RCX),
            rdx: self.get(RDX),
            rsi: self.get(RSI),
            rdi: self.get(RDI),
            rsp: self.get(RSP),
            rbp: self.get(RBP),
            r8: self.get(R8),
            r9: self.get(R8 + 1),
            r10: self.get(R8 + 2),
            r11: self.get(R8 + 3),
            r12: self.get(R8 + 4),
            r13: self.get(R8 + 5),
            r14: self.get(R8 + 6),
            r15: self.get(R8 + 7),
            rip: self.get(RIP),
            rflags: self.get(EFL),
        }
    }

    fn load(&self, regs: &Regs) {
        let pairs = [
            (RAX, regs.rax),
            (RBX, regs.rbx),
            (RCX, regs.rcx),
            (RDX, regs.rdx),
            (RSI, regs.rsi),
            (RDI, regs.rdi),
            (RSP, regs.rsp),
            (RBP, regs.rbp),
            (R8, regs.r8),
            (R8 + 1, regs.r9),
            (R8 + 2, regs.r10),
            (R8 + 3, regs.r11),
            (R8 + 4, regs.r12),
            (R8 + 5, regs.r13),
            (R8 + 6, regs.r14),
            (R8 + 7, regs.r15),
            (RIP, regs.rip),
            (EFL, regs.rflags),
        ];
        for (index, value) in pairs {
            self.set(index, value);
        }
    }

    /// The FXSAVE area the kernel saved (null when the task had no FPU state).
    fn fpu(&self) -> *mut u8 {
        self.get(FPSTATE) as *mut u8
    }
}

/// Reads up to 16 bytes of guest code at `rip`, if they are all in guest RAM.
fn code_at(rip: u64) -> Option<[u8; 16]> {
    // SAFETY: written once before the handlers were installed.
    let end = unsafe { MEMORY_END };
    if rip < RAM_START || rip.checked_add(16)? > end {
        return None;
    }
    // SAFETY: guest RAM is mapped (readable) from RAM_START to its end for the whole
    // life of the process; the guest may change the bytes, which only decides what it
    // gets reported as.
    Some(unsafe { core::ptr::read_volatile(rip as *const [u8; 16]) })
}

/// What a general-protection fault at `rip` was: a port access or `hlt` (which a VM
/// would have exited on), else a plain exception.
fn decode_privileged(rip: u64, frame: &Frame, exit: &mut ExitRecord) -> bool {
    let Some(code) = code_at(rip) else {
        return false;
    };
    let (operand16, at) = match code[0] {
        0x66 => (true, 1),
        _ => (false, 0),
    };
    let dx = (frame.get(RDX) & 0xffff) as u32;
    let wide = if operand16 { 2 } else { 4 };
    let (kind, port, size, len) = match code[at] {
        0xf4 if at == 0 => (exit_kind::HLT, 0, 0, 1),
        0xe4 => (exit_kind::PORT_READ, u32::from(code[at + 1]), 1, at + 2),
        0xe5 => (exit_kind::PORT_READ, u32::from(code[at + 1]), wide, at + 2),
        0xec => (exit_kind::PORT_READ, dx, 1, at + 1),
        0xed => (exit_kind::PORT_READ, dx, wide, at + 1),
        0xe6 => (exit_kind::PORT_WRITE, u32::from(code[at + 1]), 1, at + 2),
        0xe7 => (exit_kind::PORT_WRITE, u32::from(code[at + 1]), wide, at + 2),
        0xee => (exit_kind::PORT_WRITE, dx, 1, at + 1),
        0xef => (exit_kind::PORT_WRITE, dx, wide, at + 1),
        _ => return false,
    };
    let mask = match size {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    };
    exit.kind = kind;
    exit.port = port;
    exit.size = size;
    exit.value = (frame.get(RAX) as u32) & mask;
    exit.insn_len = len as u64;
    true
}

/// Describes the signal as an exit of the guest.
fn describe(signal: u64, info: *const u8, frame: &Frame) -> ExitRecord {
    // SAFETY: the kernel passed a complete siginfo.
    let (code, address, syscall) = unsafe {
        (
            read_volatile(info.add(SI_CODE) as *const i32),
            read_volatile(info.add(SI_ADDR) as *const u64),
            read_volatile(info.add(SI_SYSCALL) as *const i32),
        )
    };
    let mut exit = ExitRecord {
        vector: frame.get(TRAPNO),
        error_code: frame.get(ERR),
        ..ExitRecord::default()
    };
    // A signal sent by a process (si_code <= 0) is not the CPU's: only the VMM's kick
    // is expected; anything else is reported as such.
    let from_cpu = code > 0;
    match signal {
        SIGUSR1 => exit.kind = exit_kind::KICKED,
        SIGSYS if from_cpu => {
            exit.kind = exit_kind::SYSCALL;
            exit.value = syscall as u32;
        }
        // A single-step or a breakpoint of the VMM's (a campaign's): a #DB, whatever
        // trap number the kernel left in the frame for a perf event's signal.
        SIGTRAP
            if matches!(
                code as u32,
                debug_trap::SINGLE_STEP | debug_trap::BREAKPOINT
            ) =>
        {
            exit.kind = exit_kind::EXCEPTION;
            exit.vector = DEBUG_VECTOR;
            exit.value = code as u32;
            exit.address = address;
        }
        SIGSEGV if from_cpu && exit.vector == 14 => {
            exit.kind = exit_kind::MEMORY;
            exit.address = frame.get(CR2).max(address);
        }
        SIGSEGV | SIGILL | SIGFPE | SIGTRAP | SIGBUS if from_cpu || code == 0x80 => {
            let rip = frame.get(RIP);
            if !(exit.vector == 13 && decode_privileged(rip, frame, &mut exit)) {
                exit.kind = exit_kind::EXCEPTION;
                exit.address = address;
            }
        }
        _ => {
            exit.kind = exit_kind::SIGNAL;
            exit.value = signal as u32;
        }
    }
    exit
}

/// The runtime's in-call byte, if the runtime named one inside guest RAM.
fn in_call_byte(control: *mut ControlPage) -> Option<*mut u8> {
    // SAFETY: the control page is mapped; the value is the guest's to write.
    let address = unsafe { read_volatile(addr_of!((*control).in_call)) };
    // SAFETY: written once before the handlers were installed.
    let end = unsafe { MEMORY_END };
    (address >= RAM_START && address < end).then_some(address as *mut u8)
}

extern "C" fn on_signal(signal: i32, info: *mut u8, context: *mut u8) {
    let control = crate::control();
    // SAFETY: the kernel passed a complete siginfo.
    let code = unsafe { read_volatile(info.add(SI_CODE) as *const i32) };
    // SAFETY: the kernel passes a ucontext whose mcontext holds the general registers.
    let frame = Frame(unsafe { context.add(UC_MCONTEXT) } as *mut u64);
    // SAFETY: written once before the handlers were installed.
    let memory_end = unsafe { MEMORY_END };
    if signal as u64 == SIGSEGV {
        let fault = track::Fault {
            code,
            vector: frame.get(TRAPNO),
            error_code: frame.get(ERR),
            // SAFETY: the kernel passed a complete siginfo.
            address: unsafe { read_volatile(info.add(SI_ADDR) as *const u64) },
        };
        // A first write to a page protected for tracking: logged, and run again.
        if track::on_fault(control, &fault, memory_end) {
            return;
        }
    }
    let single_step = signal as u64 == SIGTRAP && code as u32 == debug_trap::SINGLE_STEP;
    if signal as u64 == SIGUSR1 || single_step {
        // Inside a call of its runtime the guest writes its own report: a kick's (or a
        // single-step's, when the VMM profiles it) would overwrite it, and the call
        // reaches the VMM anyway; a step there goes on to the next instruction.
        if let Some(byte) = in_call_byte(control) {
            // SAFETY: inside guest RAM, mapped for the process's life.
            if unsafe { read_volatile(byte) } != 0 {
                return;
            }
        }
    }
    let exit = describe(signal as u64, info, &frame);
    // SAFETY: the control page is mapped for the process's life; the VMM reads it only
    // once the turn is its own, after these writes (the futex call orders them).
    unsafe {
        write_volatile(addr_of_mut!((*control).exit), exit);
        write_volatile(addr_of_mut!((*control).regs), frame.regs());
        let fpu = frame.fpu();
        if !fpu.is_null() {
            core::ptr::copy_nonoverlapping(fpu, addr_of_mut!((*control).fpu) as *mut u8, 512);
        }
    }
    hand_over(control);
    track::apply_reprotect(control, memory_end);
    // The guest resumes with the x87/SSE state in `fpu` (loaded into the frame below),
    // whether a rollback put it there (`fpu_load`) or it is the one of this exit: that
    // is also the state a checkpoint taken at this exit must keep (`fpu_save`).
    // SAFETY: the control page is mapped; the turn is the guest's again.
    unsafe {
        if read_volatile(addr_of!((*control).fpu_save)) != 0 {
            core::ptr::copy_nonoverlapping(
                addr_of!((*control).fpu) as *const u8,
                addr_of_mut!((*control).fpu_checkpoint) as *mut u8,
                512,
            );
            write_volatile(addr_of_mut!((*control).fpu_save), 0);
        }
        write_volatile(addr_of_mut!((*control).fpu_load), 0);
    }
    // Wherever the guest resumes (here, or where a rollback put it), it is not inside
    // a call of its runtime: a rollback to a call's boundary restored the byte as that
    // call set it, and resumes after the point where the call itself clears it. The
    // byte's page may be protected for tracking: a fault here, with every signal
    // blocked, would end the process, so the write is logged first (only when the
    // byte needs it: after such a rollback).
    if let Some(byte) = in_call_byte(control) {
        // SAFETY: inside guest RAM, mapped for the process's life.
        if unsafe { read_volatile(byte) } != 0
            && track::make_writable(control, byte as u64 / 4096, memory_end)
        {
            // SAFETY: as above; the page is writable now.
            unsafe { write_volatile(byte, 0) };
        }
    }
    // SAFETY: as above; the VMM wrote what the guest resumes with before handing the
    // turn back.
    unsafe {
        frame.load(&read_volatile(addr_of!((*control).regs)));
        let fpu = frame.fpu();
        if !fpu.is_null() {
            core::ptr::copy_nonoverlapping(addr_of!((*control).fpu) as *const u8, fpu, 512);
        }
    }
}

/// Gives the turn to the VMM and waits until it is given back.
fn hand_over(control: *mut ControlPage) {
    // SAFETY: `turn` is in the mapped control page.
    let turn = unsafe { addr_of_mut!((*control).turn) };
    // SAFETY: the word is in the mapped control page, 4-byte aligned; the VMM accesses
    // it atomically too.
    let turn_word = unsafe { core::sync::atomic::AtomicU32::from_ptr(turn) };
    // A full barrier between this store and the read below (see `vmm_waiting`).
    turn_word.swap(TURN_VMM, core::sync::atomic::Ordering::SeqCst);
    // SAFETY: as above.
    if unsafe { read_volatile(addr_of!((*control).vmm_waiting)) } != 0 {
        sys::futex_wake(turn);
    }
    // SAFETY: as above.
    while unsafe { read_volatile(turn) } != TURN_GUEST {
        sys::futex_wait(turn, TURN_VMM);
    }
}
