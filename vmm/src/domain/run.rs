//! The run loop: entering the guest, serving its hypercalls, stopping it, and the
//! per-request run-time budget.

use std::time::Duration;

use virtio_seep::abi::hypercall::Hypercall;

use super::exit::{copy_exit, unknown_port, Exit};
use super::{Cpu, Domain, DomainError, DomainState};
use crate::fault::{DomainExit, DomainFault};
use crate::hypercall::{HypercallContext, HypercallOutcome};
use crate::ipc::IpcFault;

/// What a step of the domain produced.
pub(super) enum Step {
    Continue(Option<Hypercall>),
    /// A debug exit was served: run on.
    Debugged,
    Stop(DomainExit),
    Event(RunEvent),
}

/// Why [`Domain::resume`] returned.
#[derive(Debug, PartialEq, Eq)]
pub enum RunEvent {
    /// The domain stopped for good.
    Stopped(DomainExit),
    /// The domain made a hypercall the caller asked to pause on.
    Paused(Hypercall),
    /// The domain registers its queue pair (`IpcSetup`, argument: guest address).
    IpcSetup(u64),
    /// The domain's IPC notify (`Ipc`, argument: the hypercall value).
    Ipc(u32),
    /// Its turn ended ([`Domain::set_turn_end`]): it is ready to run on.
    Preempted,
}

/// A per-request limit on guest run time.
#[derive(Clone, Copy, Debug)]
pub(super) struct RunBudget {
    budget: Duration,
    used: Duration,
}

impl Domain {
    /// Runs a domain that is not part of a system until it stops. IPC needs a system:
    /// a domain that tries it stops with an IPC fault.
    pub fn run(&mut self) -> Result<DomainExit, DomainError> {
        match self.run_until(|_| false)? {
            Some(exit) => Ok(exit),
            None => unreachable!("run_until only returns None when asked to pause"),
        }
    }

    /// Like [`run`](Self::run), but returns `None` (the domain stays `Ready`) as soon
    /// as it has made a hypercall for which `pause` returns true.
    pub fn run_until(
        &mut self,
        pause: impl FnMut(Hypercall) -> bool,
    ) -> Result<Option<DomainExit>, DomainError> {
        let mut pause = pause;
        loop {
            return Ok(match self.resume(&mut pause)? {
                RunEvent::Stopped(exit) => Some(exit),
                RunEvent::Paused(_) => None,
                // Only a scheduler sets turns; a lone domain just runs on.
                RunEvent::Preempted => continue,
                RunEvent::IpcSetup(_) | RunEvent::Ipc(_) => {
                    Some(self.fail(IpcFault::NotSetUp("outside a system (use `ankh up`)").into()))
                }
            });
        }
    }

    /// Runs the domain until it stops, makes an IPC hypercall, or makes a hypercall
    /// for which `pause` returns true.
    pub fn resume(
        &mut self,
        mut pause: impl FnMut(Hypercall) -> bool,
    ) -> Result<RunEvent, DomainError> {
        if let DomainState::Stopped(exit) = &self.state {
            return Err(DomainError::AlreadyStopped {
                domain: self.name.clone(),
                exit: exit.clone(),
            });
        }
        self.watch.bind_current_thread();
        let result = loop {
            match self.step() {
                Ok(Step::Continue(Some(call))) if pause(call) => break Ok(RunEvent::Paused(call)),
                // Exits that the VMM serves by itself (hypercalls, device accesses, a
                // preemption kick) end the domain's turn when it is over.
                Ok(Step::Continue(_)) if self.watch.turn_over() => break Ok(RunEvent::Preempted),
                Ok(Step::Continue(_) | Step::Debugged) => {}
                Ok(Step::Event(event)) => break Ok(event),
                Ok(Step::Stop(exit)) => break Ok(RunEvent::Stopped(self.stop(exit))),
                Err(e) => break Err(e),
            }
        };
        self.watch.unbind_thread();
        result
    }

    /// Sets when the domain's scheduling turn ends (`None`: never, the default).
    /// [`resume`](Self::resume) then returns [`RunEvent::Preempted`] at the first exit
    /// after it, and a guest that does not exit is kicked out of KVM_RUN by the
    /// watchdog thread (see `watchdog`).
    pub fn set_turn_end(&self, at: Option<std::time::Instant>) {
        self.watch.set_preempt_at(at);
    }

    /// Stops the domain with `fault`, found by the VMM outside the vCPU (e.g. a
    /// malformed message). Returns the exit.
    pub fn fail(&mut self, fault: DomainFault) -> DomainExit {
        self.stop(DomainExit::Faulted(fault))
    }

    fn stop(&mut self, exit: DomainExit) -> DomainExit {
        self.console.flush();
        self.state = DomainState::Stopped(exit.clone());
        exit
    }

    /// Gives the message in hand `budget` of guest run time (`None`: no limit). A
    /// domain that uses it up stops with [`DomainFault::RequestOverBudget`] at its next
    /// exit: the per-request watchdog, for a server that keeps exiting but never
    /// answers (one that stops exiting is caught by the vCPU watchdog).
    pub fn set_request_budget(&mut self, budget: Option<Duration>) {
        self.budget = budget.map(|budget| RunBudget {
            budget,
            used: Duration::ZERO,
        });
        // The VMM budgets every message it delivers to a server: its boot is over.
        self.debug_arm_pending = self.debug.is_some();
    }

    fn step(&mut self) -> Result<Step, DomainError> {
        if std::mem::take(&mut self.debug_arm_pending) {
            self.arm_debug()?;
        }
        if self.debug.is_some() {
            self.sync_trap_flag();
        }
        let started = self.budget.is_some().then(std::time::Instant::now);
        let step = self.step_once()?;
        // A debug exit is the VMM's own doing (a breakpoint hit, a single-step): its
        // cost is not the request's.
        if matches!(step, Step::Debugged) {
            return Ok(Step::Continue(None));
        }
        if let (Some(started), Some(budget)) = (started, self.budget.as_mut()) {
            budget.used += started.elapsed();
            if budget.used > budget.budget && !matches!(step, Step::Stop(_)) {
                let budget = budget.budget;
                return Ok(Step::Stop(DomainExit::Faulted(
                    DomainFault::RequestOverBudget { budget },
                )));
            }
        }
        Ok(step)
    }

    fn step_once(&mut self) -> Result<Step, DomainError> {
        super::EXITS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let kvm = match &mut self.cpu {
            Cpu::Kvm(kvm) => kvm,
            Cpu::Process(_) => return self.step_process(),
        };
        self.watch.enter();
        let (device, memory, watch) = (self.device.as_mut(), &self.memory, &self.watch);
        // The guest stops running when KVM_RUN returns: a device access is served after
        // the watch is left, so the device's I/O never counts as time in the guest.
        let (exit, watchdog_fired) = match kvm.vcpu.run() {
            Ok(exit) => {
                let fired = watch.leave();
                (Ok(copy_exit(exit, device, memory)), fired)
            }
            Err(error) => (Err(error), watch.leave()),
        };
        let exit = match exit {
            Ok(exit) => exit,
            Err(e) if e.errno() == libc::EINTR || e.errno() == libc::EAGAIN => {
                return Ok(match watchdog_fired {
                    true => Step::Stop(DomainExit::Faulted(DomainFault::WatchdogTimeout {
                        timeout: self.watch.timeout(),
                    })),
                    // A stale kick from an earlier run: just resume.
                    false => Step::Continue(None),
                });
            }
            Err(source) => return Err(self.run_error("KVM_RUN", source)),
        };
        let fault = |fault| Ok(Step::Stop(DomainExit::Faulted(fault)));
        match exit {
            Exit::PortWrite {
                port,
                size: 4,
                value,
            } => match Hypercall::from_port(port) {
                Some(call) => self.hypercall(call, value),
                None => fault(unknown_port(port, "write", 4)),
            },
            Exit::PortWrite { port, size, .. } => fault(unknown_port(port, "write", size)),
            Exit::PortRead { port, size } => fault(unknown_port(port, "read", size)),
            Exit::Mmio { gpa, len, write } => {
                fault(DomainFault::UnownedAddress { gpa, len, write })
            }
            Exit::Device(Ok(())) => Ok(Step::Continue(None)),
            Exit::Device(Err(device_fault)) => fault(device_fault.into()),
            Exit::Hlt => Ok(Step::Stop(DomainExit::Halted)),
            Exit::Shutdown => {
                let rip = self.regs()?.rip;
                fault(DomainFault::TripleFault { rip })
            }
            Exit::InternalError => fault(self.internal_error()?),
            Exit::DirtyRingFull => {
                let kvm = self.kvm("dirty ring")?;
                self.dirty_log()?
                    .ring_full(&kvm.vm)
                    .map_err(|source| self.run_error("KVM_RESET_DIRTY_RINGS", source))?;
                Ok(Step::Continue(None))
            }
            Exit::Debug { exception, pc, dr6 } => match self.debug_exit(exception, pc, dr6)? {
                super::debug::DebugOutcome::Resume => Ok(Step::Debugged),
                super::debug::DebugOutcome::Stop(exit) => Ok(Step::Stop(exit)),
            },
            Exit::Other(reason) => fault(DomainFault::UnexpectedExit { reason }),
        }
    }

    pub(super) fn hypercall(&mut self, call: Hypercall, value: u32) -> Result<Step, DomainError> {
        // The calls on the hot path take no register arguments: no read for them.
        let regs = match call {
            Hypercall::Nop | Hypercall::Exit | Hypercall::Ipc => Default::default(),
            _ => self.regs()?,
        };
        self.serve_hypercall(call, value, regs)
    }

    /// Serves hypercall `call` with `value` and the argument registers `regs`.
    pub(super) fn serve_hypercall(
        &mut self,
        call: Hypercall,
        value: u32,
        regs: kvm_bindings::kvm_regs,
    ) -> Result<Step, DomainError> {
        let mut ctx = HypercallContext {
            memory: &self.memory,
            console: &mut self.console,
        };
        Ok(match ctx.serve(call, value, || regs) {
            HypercallOutcome::Resume => Step::Continue(Some(call)),
            HypercallOutcome::Stop(exit) => Step::Stop(exit),
            HypercallOutcome::IpcSetup { setup } => Step::Event(RunEvent::IpcSetup(setup)),
            HypercallOutcome::Ipc { value } => Step::Event(RunEvent::Ipc(value)),
            HypercallOutcome::DeclareRegion { log } => {
                self.declare_region(log)?;
                Step::Continue(Some(call))
            }
        })
    }
}
