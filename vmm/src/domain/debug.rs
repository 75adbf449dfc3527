//! Guest debugging for fault-injection campaigns (`ankh campaign`), with the CPU's own
//! debug facilities: a hardware execute breakpoint with a hit count, and single-step.
//! Software breakpoints (`int3`) are never used: KVM cannot run them on these hosts.
//!
//! - A VM: KVM_SET_GUEST_DEBUG (DR0, single-step). On these hosts both work for
//!   kernel-mode (CPL0) guests only: at CPL3 the breakpoint never fires and the first
//!   single-step trap is delivered to the guest, so a VM under debug runs in kernel
//!   mode.
//! - A process domain: the breakpoint is a perf event on the process (`perf`), which
//!   the kernel counts and signals at the k-th hit; single-step is the trap flag in
//!   the flags the process resumes with. Both run in user mode at native speed.
//!
//! A [`GuestDebug`] is shared by every incarnation of one server domain in one run (a
//! restart creates a new VM from the same config): a fault fires at most once per run
//! and a profile adds up across restarts. Nothing is armed while the server boots: the
//! first message delivered to it (the VMM gives it a request budget then) arms it.
//!
//! - [`DebugPlan::Inject`]: DR0 at the site; each hit before the k-th steps over it
//!   (one single-step without the breakpoint, which then comes back); the k-th
//!   applies the fault, disarms, and resumes (rnd-load single-steps the load first).
//! - [`DebugPlan::Profile`]: single-steps every instruction and counts each address,
//!   up to a bound of steps.

pub mod decode;
mod perf;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use kvm_bindings::{
    kvm_guest_debug, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP,
};
use serde::{Deserialize, Serialize};

use super::{Cpu, Domain, DomainError};
use crate::fault::{DomainExit, DomainFault};
use decode::{FaultType, MAX_INSTRUCTION_LEN};

/// DR6: DR0's breakpoint matched.
const DR6_B0: u64 = 1;
/// DR6: a single-step trap.
const DR6_BS: u64 = 1 << 14;
/// DR7: DR0 enabled (L0), execute (RW0 = 00), one byte (LEN0 = 00).
const DR7_EXECUTE_DR0: u64 = 1;
/// The exception vector of #DB.
pub(super) const DEBUG_VECTOR: u32 = 1;
/// RFLAGS.TF: a single-step trap after the next instruction.
const TRAP_FLAG: u64 = 1 << 8;

/// One fault to inject: the `hit`-th execution (1-based, counted from the server's
/// first message) of the instruction at `address` gets `fault`; `seed` chooses its
/// random bit or value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultPlan {
    /// The instruction's guest address.
    pub address: u64,
    /// Which execution of it (1-based).
    pub hit: u64,
    /// What happens then.
    pub fault: FaultType,
    /// The seed of the fault's own randomness.
    pub seed: u64,
}

/// Whether this host lets the VMM set breakpoints on its process domains (perf
/// events on its own children): one is set on this process and removed.
pub fn process_breakpoints_available() -> std::io::Result<()> {
    let probe = process_breakpoints_available as *const () as u64;
    // A period the probe never reaches (perf refuses one with the top bit set).
    perf::PerfBreakpoint::open(std::process::id(), probe, 1 << 62).map(drop)
}

/// What a [`GuestDebug`] does with its domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DebugPlan {
    /// Inject one fault.
    Inject(FaultPlan),
    /// Count every instruction executed, up to `max_steps` of them.
    Profile {
        /// The bound of single-steps (each costs a VM exit).
        max_steps: u64,
    },
}

/// What became of an injection.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectionRecord {
    /// Whether the server received a message (the plan was armed).
    pub armed: bool,
    /// Executions of the site seen so far.
    pub hits: u64,
    /// The fault fired: what it did (`None`: the site was not reached `hit` times).
    pub fired: Option<String>,
}

/// One executed instruction in a profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfiledSite {
    /// Executions counted.
    pub count: u64,
    /// Its bytes (up to the longest x86 instruction).
    pub bytes: Vec<u8>,
}

/// A domain's profile: each executed address, with its count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Per address.
    pub sites: HashMap<u64, ProfiledSite>,
    /// Single-steps taken.
    pub steps: u64,
    /// The bound was reached: the profile is partial.
    pub truncated: bool,
}

#[derive(Debug)]
struct DebugState {
    plan: DebugPlan,
    record: InjectionRecord,
    profile: Profile,
    /// rnd-load waits for its load to execute: the register and the value to put in.
    pending_load: Option<(iced_x86::Register, u64)>,
    /// Done: nothing more to arm.
    finished: bool,
    /// Single-stepping over the site after a hit before the k-th (the breakpoint
    /// comes back after that one instruction).
    stepping_over: bool,
    /// A process domain's breakpoint (its hits not yet in `record.hits`).
    perf: Option<perf::PerfBreakpoint>,
    /// The address of the last single-step of a profile.
    last_step: Option<u64>,
}

impl DebugState {
    /// Ends the process breakpoint, if any, adding its hits to the record.
    fn end_perf(&mut self) {
        if let Some(perf) = self.perf.take() {
            perf.disable();
            self.record.hits += perf.hits();
        }
    }
}

/// Guest debugging of one server domain over a run, shared by its incarnations.
#[derive(Debug)]
pub struct GuestDebug {
    state: Mutex<DebugState>,
}

impl GuestDebug {
    /// A shared debug plan, not yet armed.
    pub fn new(plan: DebugPlan) -> Arc<GuestDebug> {
        Arc::new(GuestDebug {
            state: Mutex::new(DebugState {
                plan,
                record: InjectionRecord::default(),
                profile: Profile::default(),
                pending_load: None,
                finished: false,
                stepping_over: false,
                perf: None,
                last_step: None,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, DebugState> {
        // A panic while holding it would be a bug of this module; the data stay usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What became of the injection so far.
    pub fn record(&self) -> InjectionRecord {
        let state = self.lock();
        let mut record = state.record.clone();
        record.hits += state.perf.as_ref().map_or(0, perf::PerfBreakpoint::hits);
        record
    }

    /// The profile so far.
    pub fn profile(&self) -> Profile {
        self.lock().profile.clone()
    }

    /// Single-steps counted by the profile so far.
    pub(super) fn steps(&self) -> u64 {
        self.lock().profile.steps
    }
}

/// What KVM_GUEST_DEBUG is set to for a domain now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum DebugMode {
    /// Nothing.
    #[default]
    Off,
    /// Enabled, with no breakpoint and no single-step (before arming, after firing):
    /// KVM keeps intercepting #DB, so none reaches the guest.
    Idle,
    /// DR0 at an address.
    Breakpoint(u64),
    /// Single-step.
    SingleStep,
}

/// What the run loop does after a debug exit.
pub(super) enum DebugOutcome {
    /// Resume the guest.
    Resume,
    /// Stop it with this exit.
    Stop(DomainExit),
}

impl Domain {
    /// Sets the domain's debugging to `mode` (nothing to do when it already is).
    fn set_debug_mode(&mut self, mode: DebugMode) -> Result<(), DomainError> {
        if self.debug_mode == mode {
            return Ok(());
        }
        match self.cpu {
            Cpu::Kvm(_) => self.set_kvm_debug(mode)?,
            Cpu::Process(_) => self.set_process_debug(mode)?,
        }
        self.debug_mode = mode;
        Ok(())
    }

    /// A process domain's breakpoint: a perf event for the hits still to come (the
    /// trap flag follows `debug_mode` at each step, see `sync_trap_flag`).
    fn set_process_debug(&mut self, mode: DebugMode) -> Result<(), DomainError> {
        let (Some(debug), Cpu::Process(cpu)) = (self.debug.as_ref(), &self.cpu) else {
            return Ok(());
        };
        let mut state = debug.lock();
        state.end_perf();
        if let (DebugMode::Breakpoint(address), DebugPlan::Inject(plan)) = (mode, &state.plan) {
            // Hits of earlier incarnations count: a restart does not start over.
            let period = plan.hit.saturating_sub(state.record.hits).max(1);
            match perf::PerfBreakpoint::open(cpu.pid(), address, period) {
                Ok(breakpoint) => state.perf = Some(breakpoint),
                // The process is gone: its next step reports how it died.
                Err(error) if error.raw_os_error() == Some(libc::ESRCH) => {}
                Err(source) => {
                    return Err(DomainError::Debug {
                        domain: self.name.clone(),
                        source,
                    })
                }
            }
        }
        Ok(())
    }

    /// Before a process domain under debug runs: its trap flag set exactly while it is
    /// single-stepped (a rollback may have restored flags of another mode).
    pub(super) fn sync_trap_flag(&mut self) {
        let Cpu::Process(cpu) = &mut self.cpu else {
            return;
        };
        let mut regs = cpu.regs();
        let stepping = self.debug_mode == DebugMode::SingleStep;
        if stepping != (regs.rflags & TRAP_FLAG != 0) {
            regs.rflags ^= TRAP_FLAG;
            cpu.set_regs(&regs);
        }
    }

    /// A process domain's #DB (`how`: a `debug_trap`) with its guest at `pc`: served
    /// as the same KVM exit would be.
    pub(super) fn process_debug_exit(
        &mut self,
        how: u32,
        pc: u64,
    ) -> Result<DebugOutcome, DomainError> {
        use virtio_seep::abi::process::debug_trap;
        let dr6 = match how {
            debug_trap::BREAKPOINT => DR6_B0,
            debug_trap::SINGLE_STEP => DR6_BS,
            _ => 0,
        };
        self.debug_exit(DEBUG_VECTOR, pc, dr6)
    }

    /// Sets KVM's guest debugging to `mode`.
    fn set_kvm_debug(&mut self, mode: DebugMode) -> Result<(), DomainError> {
        let mut debug = kvm_guest_debug::default();
        match mode {
            DebugMode::Off => {}
            DebugMode::Idle => debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
            DebugMode::Breakpoint(address) => {
                debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
                debug.arch.debugreg[0] = address;
                debug.arch.debugreg[7] = DR7_EXECUTE_DR0;
            }
            DebugMode::SingleStep => debug.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP,
        }
        self.kvm("guest debugging (KVM_SET_GUEST_DEBUG)")?
            .vcpu
            .set_guest_debug(&debug)
            .map_err(|source| self.run_error("KVM_SET_GUEST_DEBUG", source))?;
        Ok(())
    }

    /// Instructions the profile counted in this domain since the last call (0 without
    /// a profile): the run slice that just ended executed them.
    pub fn take_profiled_steps(&mut self) -> u64 {
        let Some(debug) = self.debug.as_ref() else {
            return 0;
        };
        let steps = debug.steps();
        let new = steps.saturating_sub(self.profiled_steps_seen);
        self.profiled_steps_seen = steps;
        new
    }

    /// Prepares a domain created with a debug plan (see [`DebugMode::Idle`]).
    pub(super) fn prepare_debug(&mut self) -> Result<(), DomainError> {
        match self.debug {
            Some(_) => self.set_debug_mode(DebugMode::Idle),
            None => Ok(()),
        }
    }

    /// A message was delivered to the domain: the end of its boot. Arms its debug plan
    /// the first time (and again in a restarted incarnation whose fault has not fired).
    pub(super) fn arm_debug(&mut self) -> Result<(), DomainError> {
        let Some(debug) = self.debug.clone() else {
            return Ok(());
        };
        if !matches!(self.debug_mode, DebugMode::Off | DebugMode::Idle) {
            return Ok(());
        }
        let mut state = debug.lock();
        if state.finished {
            return Ok(());
        }
        state.record.armed = true;
        let mode = match &state.plan {
            DebugPlan::Inject(plan) => DebugMode::Breakpoint(plan.address),
            DebugPlan::Profile { .. } => DebugMode::SingleStep,
        };
        drop(state);
        self.set_debug_mode(mode)
    }

    /// Serves a KVM_EXIT_DEBUG at `pc` with status `dr6`.
    pub(super) fn debug_exit(
        &mut self,
        exception: u32,
        pc: u64,
        dr6: u64,
    ) -> Result<DebugOutcome, DomainError> {
        let Some(debug) = self.debug.clone() else {
            // Nothing asked for it: a #DB the guest cannot cause without our plan.
            return Ok(DebugOutcome::Stop(DomainExit::Faulted(
                DomainFault::UnexpectedExit {
                    reason: format!("debug exit (vector {exception}) at {pc:#x} with no plan"),
                },
            )));
        };
        let mut state = debug.lock();

        if exception != DEBUG_VECTOR {
            return Ok(DebugOutcome::Resume);
        }
        if let DebugPlan::Profile { max_steps } = state.plan {
            // A process's breakpoint counts each execution of an instruction once, a
            // VM's each iteration of a `rep` one (the same address, stepped again):
            // the profile counts as the substrate's breakpoints do.
            let repeated = state.last_step.replace(pc) == Some(pc);
            if repeated && matches!(self.cpu, Cpu::Process(_)) {
                return Ok(DebugOutcome::Resume);
            }
            if dr6 & DR6_BS != 0 || self.debug_mode == DebugMode::SingleStep {
                let bytes = self.memory.read_prefix(pc, MAX_INSTRUCTION_LEN as u64);
                let profile = &mut state.profile;
                profile
                    .sites
                    .entry(pc)
                    .or_insert(ProfiledSite { count: 0, bytes })
                    .count += 1;
                profile.steps += 1;
                if profile.steps >= max_steps {
                    profile.truncated = true;
                    state.finished = true;
                    drop(state);
                    self.set_debug_mode(DebugMode::Idle)?;
                }
            }
            return Ok(DebugOutcome::Resume);
        }
        if let Some((register, value)) = state.pending_load.take() {
            // The load just executed: its destination gets the random value.
            state.finished = true;
            drop(state);
            let mut regs = self.regs()?;
            if let Some(slot) = register_slot(&mut regs, register.full_register()) {
                *slot = decode::write_partial(register, *slot, value);
                self.set_regs(&regs)?;
            }
            self.set_debug_mode(DebugMode::Idle)?;
            return Ok(DebugOutcome::Resume);
        }
        let DebugPlan::Inject(plan) = state.plan.clone() else {
            unreachable!("profiles returned above")
        };
        if std::mem::take(&mut state.stepping_over) {
            drop(state);
            self.set_debug_mode(DebugMode::Breakpoint(plan.address))?;
            return Ok(DebugOutcome::Resume);
        }
        if dr6 & DR6_B0 == 0 || pc != plan.address || state.finished {
            return Ok(DebugOutcome::Resume);
        }
        if matches!(self.cpu, Cpu::Process(_)) {
            // The kernel counted the hits and signals the k-th only.
            state.end_perf();
        } else {
            state.record.hits += 1;
            if state.record.hits < plan.hit {
                // Step over the site: one instruction without the breakpoint (KVM
                // here does not honour RFLAGS.RF set by the VMM: the breakpoint hit
                // again).
                state.stepping_over = true;
                drop(state);
                self.set_debug_mode(DebugMode::SingleStep)?;
                return Ok(DebugOutcome::Resume);
            }
        }
        state.finished = true;
        drop(state);
        self.set_debug_mode(DebugMode::Idle)?;
        let (what, outcome) = self.apply_fault(&plan)?;
        let mut state = debug.lock();
        if let Some(pending) = what.pending_load {
            state.finished = false;
            state.pending_load = Some(pending);
            drop(state);
            self.set_debug_mode(DebugMode::SingleStep)?;
            state = debug.lock();
        }
        state.record.fired = Some(what.text);
        Ok(outcome)
    }

    /// Applies `plan`'s fault at its site (the guest stands before the instruction).
    fn apply_fault(&mut self, plan: &FaultPlan) -> Result<(Applied, DebugOutcome), DomainError> {
        let pc = plan.address;
        let bytes = self.memory.read_prefix(pc, MAX_INSTRUCTION_LEN as u64);
        let instruction = decode::decode(pc, &bytes);
        let text = instruction
            .as_ref()
            .map(decode::describe)
            .unwrap_or_default();
        let mut random = SplitMix64::new(plan.seed);
        let mut regs = self.regs()?;
        let not_applicable = |why: &str| Applied {
            text: format!("{} not applicable to `{text}` ({why})", plan.fault),
            pending_load: None,
        };
        let resume = DebugOutcome::Resume;
        let applied = |what: String| Applied {
            text: what,
            pending_load: None,
        };
        let Some(instruction) = instruction else {
            return Ok((not_applicable("no valid instruction"), resume));
        };
        Ok(match plan.fault {
            FaultType::FailStop => (
                applied(format!("fail-stop at `{text}`")),
                DebugOutcome::Stop(DomainExit::Faulted(DomainFault::Injected("fail-stop"))),
            ),
            FaultType::StuckAtLoop => {
                self.inject_hang()?;
                (applied(format!("stuck-at-loop at `{text}`")), resume)
            }
            FaultType::FlipBranch => match decode::flipped_branch(&instruction, regs.rflags) {
                Some(target) => {
                    regs.rip = target;
                    self.set_regs(&regs)?;
                    (applied(format!("`{text}` sent to {target:#x}")), resume)
                }
                None => (not_applicable("not a conditional branch"), resume),
            },
            FaultType::NoLoad | FaultType::NoStore => {
                if !decode::applies(plan.fault, &instruction) {
                    (not_applicable("no such memory access"), resume)
                } else {
                    regs.rip = instruction.next_ip();
                    self.set_regs(&regs)?;
                    (applied(format!("`{text}` skipped")), resume)
                }
            }
            FaultType::CorruptPointer | FaultType::CorruptIndex | FaultType::CorruptInteger => {
                let registers = decode::corruptible(plan.fault, &instruction);
                let register = (!registers.is_empty()).then(|| *random.pick(&registers));
                let bit = u32::try_from(random.below(64)).unwrap_or(0);
                let slot = register.and_then(|r| register_slot(&mut regs, r.full_register()));
                if let (Some(register), Some(slot)) = (register, slot) {
                    let before = *slot;
                    *slot = decode::flip_bit(register, before, bit);
                    let after = *slot;
                    self.set_regs(&regs)?;
                    let what = format!("`{text}`: {register:?} {before:#x} -> {after:#x}");
                    (applied(what), resume)
                } else {
                    (not_applicable("no such register"), resume)
                }
            }
            FaultType::RndLoad => match decode::plain_load_destination(&instruction) {
                Some(register) => {
                    let value = random.next();
                    let what = Applied {
                        text: format!("`{text}`: {register:?} gets {value:#x}"),
                        pending_load: Some((register, value)),
                    };
                    (what, resume)
                }
                None => (not_applicable("not a plain load"), resume),
            },
        })
    }
}

/// What applying a fault did.
struct Applied {
    text: String,
    /// rnd-load: the value to put in the register once the load has executed.
    pending_load: Option<(iced_x86::Register, u64)>,
}

/// The field of `regs` that holds 64-bit general register `register` (`None` for any
/// other register; the decoder hands out general registers only).
fn register_slot(
    regs: &mut kvm_bindings::kvm_regs,
    register: iced_x86::Register,
) -> Option<&mut u64> {
    use iced_x86::Register as R;
    match register {
        R::RAX => Some(&mut regs.rax),
        R::RBX => Some(&mut regs.rbx),
        R::RCX => Some(&mut regs.rcx),
        R::RDX => Some(&mut regs.rdx),
        R::RSI => Some(&mut regs.rsi),
        R::RDI => Some(&mut regs.rdi),
        R::RBP => Some(&mut regs.rbp),
        R::RSP => Some(&mut regs.rsp),
        R::R8 => Some(&mut regs.r8),
        R::R9 => Some(&mut regs.r9),
        R::R10 => Some(&mut regs.r10),
        R::R11 => Some(&mut regs.r11),
        R::R12 => Some(&mut regs.r12),
        R::R13 => Some(&mut regs.r13),
        R::R14 => Some(&mut regs.r14),
        R::R15 => Some(&mut regs.r15),
        _ => None,
    }
}

/// A tiny seeded generator (SplitMix64): the same seed gives the same numbers on every
/// host, which is all a campaign needs of it.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    /// The next number.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..bound` (`bound` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// One of `items` (not empty).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        let index = self.below(items.len() as u64);
        &items[usize::try_from(index).unwrap_or(0)]
    }
}
