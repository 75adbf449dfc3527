//! One step of a process domain: give the process the turn, take its next exit, and
//! serve it exactly as the same exit of a VM is served (hypercalls through the same
//! code, exceptions as the image's stubs would report them, the device window as KVM
//! emulates it).

use virtio_seep::abi::hypercall::Hypercall;
use virtio_seep::abi::process::{exit_kind, ExitRecord};

use super::mmio::{decode_access, load_into, Access};
use super::ProcessExit;
use crate::devices::blk::BlkDevice;
use crate::domain::debug::{DebugOutcome, DEBUG_VECTOR};
use crate::domain::exit::unknown_port;
use crate::domain::run::Step;
use crate::domain::{Cpu, Domain, DomainError};
use crate::fault::{DomainExit, DomainFault};

/// The page-fault vector.
const PAGE_FAULT: u64 = 14;

/// The general-protection vector.
const GENERAL_PROTECTION: u64 = 13;

fn is_hypercall_port(port: u32) -> bool {
    use virtio_seep::abi::hypercall::{HYPERCALL_PORT_BASE, HYPERCALL_PORT_END};
    (u32::from(HYPERCALL_PORT_BASE)..u32::from(HYPERCALL_PORT_END)).contains(&port)
}

impl Domain {
    pub(in crate::domain) fn step_process(&mut self) -> Result<Step, DomainError> {
        let Cpu::Process(cpu) = &mut self.cpu else {
            unreachable!("step_process is only called for process domains");
        };
        self.watch.enter();
        let exit = cpu.run(&self.watch);
        let watchdog_fired = self.watch.leave();
        let fault = |fault| Ok(Step::Stop(DomainExit::Faulted(fault)));
        let record = match exit {
            ProcessExit::Exit(record) => record,
            ProcessExit::Died(status) => {
                return fault(DomainFault::ProcessDied {
                    what: format!("ended: {status}"),
                })
            }
        };
        // Only `rip` is needed here: the whole register file is not copied per exit.
        let rip = cpu.rip();
        match record.kind {
            // The TSS's I/O bitmap of a user-mode VM lets the guest reach the
            // hypercall ports only: any other port is a #GP there, and here.
            exit_kind::PORT_WRITE | exit_kind::PORT_READ if !is_hypercall_port(record.port) => {
                let record = ExitRecord {
                    kind: exit_kind::EXCEPTION,
                    vector: GENERAL_PROTECTION,
                    error_code: 0,
                    ..record
                };
                self.exception(&record, rip, 0)
            }
            exit_kind::PORT_WRITE => {
                // As after a VM's port exit, the guest resumes after the instruction
                // (the runtime's own calls, `insn_len` 0, resume where they say).
                if record.insn_len != 0 {
                    cpu.set_rip(rip.wrapping_add(record.insn_len));
                }
                let port = u16::try_from(record.port).unwrap_or(u16::MAX);
                let size = usize::try_from(record.size).unwrap_or(usize::MAX);
                match Hypercall::from_port(port) {
                    Some(call) if size == 4 => self.hypercall(call, record.value),
                    _ => fault(unknown_port(port, "write", size)),
                }
            }
            exit_kind::PORT_READ => {
                let port = u16::try_from(record.port).unwrap_or(u16::MAX);
                let size = usize::try_from(record.size).unwrap_or(usize::MAX);
                fault(unknown_port(port, "read", size))
            }
            exit_kind::HLT => Ok(Step::Stop(DomainExit::Halted)),
            // A campaign's breakpoint or single-step (without a debug plan, a #DB is
            // the guest's own exception, as in a VM).
            exit_kind::EXCEPTION
                if record.vector == u64::from(DEBUG_VECTOR) && self.debug.is_some() =>
            {
                Ok(match self.process_debug_exit(record.value, rip)? {
                    DebugOutcome::Resume => Step::Debugged,
                    DebugOutcome::Stop(exit) => Step::Stop(exit),
                })
            }
            exit_kind::EXCEPTION => self.exception(&record, rip, record.address),
            exit_kind::MEMORY if self.device.is_some() && BlkDevice::owns(record.address) => {
                self.emulate_device_access(record.address)
            }
            exit_kind::MEMORY => self.exception(&record, rip, record.address),
            exit_kind::SYSCALL => fault(DomainFault::ForbiddenSyscall {
                number: record.value,
            }),
            exit_kind::KICKED if watchdog_fired => fault(DomainFault::WatchdogTimeout {
                timeout: self.watch.timeout(),
            }),
            // A preemption kick, or a stale one from an earlier run: resume.
            exit_kind::KICKED => Ok(Step::Continue(None)),
            _ => fault(DomainFault::ProcessDied {
                what: format!("got signal {} it cannot explain", record.value),
            }),
        }
    }

    /// What the image's exception stub reports for this CPU exception: the
    /// `Exception` hypercall, served by the same code as in a VM.
    fn exception(
        &mut self,
        record: &ExitRecord,
        rip: u64,
        address: u64,
    ) -> Result<Step, DomainError> {
        let vector = match record.kind {
            exit_kind::MEMORY => PAGE_FAULT,
            _ => record.vector,
        };
        let cr2 = if vector == PAGE_FAULT { address } else { 0 };
        let arguments = kvm_bindings::kvm_regs {
            rdi: record.error_code,
            rsi: rip,
            r8: cr2,
            ..Default::default()
        };
        let vector = u32::try_from(vector).unwrap_or(u32::MAX);
        self.serve_hypercall(Hypercall::Exception, vector, arguments)
    }

    /// Emulates the move at the guest's `rip` that touched the device window at
    /// `address`, as KVM does for a VM's MMIO exit.
    fn emulate_device_access(&mut self, address: u64) -> Result<Step, DomainError> {
        let Cpu::Process(cpu) = &mut self.cpu else {
            unreachable!("only process domains emulate their device accesses");
        };
        let Some(device) = self.device.as_mut() else {
            unreachable!("checked by the caller");
        };
        let mut regs = cpu.regs();
        let bytes = self.memory.read_prefix(regs.rip, 15);
        let stop = |fault: DomainFault| Ok(Step::Stop(DomainExit::Faulted(fault)));
        let served = match decode_access(regs.rip, &bytes, &regs) {
            Some(Access::Read {
                size,
                register,
                len,
            }) => {
                let mut data = [0u8; 8];
                device.mmio_read(address, &mut data[..size]).map(|()| {
                    load_into(&mut regs, register, u64::from_le_bytes(data));
                    len
                })
            }
            Some(Access::Write { size, value, len }) => device
                .mmio_write(&self.memory, address, &value.to_le_bytes()[..size])
                .map(|()| len),
            None => {
                return stop(DomainFault::EmulationFailure {
                    rip: regs.rip,
                    bytes,
                })
            }
        };
        match served {
            Ok(len) => {
                regs.rip = regs.rip.wrapping_add(len);
                cpu.set_regs(&regs);
                Ok(Step::Continue(None))
            }
            Err(device_fault) => stop(device_fault.into()),
        }
    }
}
