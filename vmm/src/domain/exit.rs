//! Decoding a VM exit: what KVM_RUN ended with, copied out of the run area, and the
//! details of an internal error.

use kvm_bindings::{
    KVM_EXIT_DIRTY_RING_FULL, KVM_INTERNAL_ERROR_EMULATION,
    KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES,
};
use kvm_ioctls::VcpuExit;

use super::{Cpu, Domain, DomainError};
use crate::devices::blk::BlkDevice;
use crate::devices::DeviceFault;
use crate::fault::DomainFault;
use crate::hypercall::HypercallContext;
use crate::memory::DomainMemory;

/// What one KVM_RUN ended with, copied out of the vCPU's shared run area (`Device`: an
/// access to the domain's device, already served or refused; `Debug`: KVM_EXIT_DEBUG,
/// a breakpoint or single-step of `debug`).
pub(super) enum Exit {
    PortWrite { port: u16, size: usize, value: u32 },
    PortRead { port: u16, size: usize },
    Mmio { gpa: u64, len: usize, write: bool },
    Device(Result<(), DeviceFault>),
    Hlt,
    Shutdown,
    InternalError,
    DirtyRingFull,
    Debug { exception: u32, pc: u64, dr6: u64 },
    Other(String),
}

impl Domain {
    /// Reads the details of a KVM_EXIT_INTERNAL_ERROR.
    pub(super) fn internal_error(&mut self) -> Result<DomainFault, DomainError> {
        let rip = self.regs()?.rip;
        let Cpu::Kvm(kvm) = &mut self.cpu else {
            unreachable!("only a VM has KVM internal errors");
        };
        let run = kvm.vcpu.get_kvm_run();
        // SAFETY: the last exit was KVM_EXIT_INTERNAL_ERROR, for which KVM fills the
        // `internal` member of the union; `emulation_failure` overlays it and is only
        // read when `suberror` says it is an emulation failure. Both are plain data.
        let (suberror, kvm_bytes) = unsafe {
            let failure = run.__bindgen_anon_1.emulation_failure;
            let has_bytes = failure.suberror == KVM_INTERNAL_ERROR_EMULATION
                && failure.flags & u64::from(KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)
                    != 0;
            let insn = failure.__bindgen_anon_1.__bindgen_anon_1;
            let len = usize::from(insn.insn_size).min(insn.insn_bytes.len());
            (
                run.__bindgen_anon_1.internal.suberror,
                has_bytes.then(|| insn.insn_bytes[..len].to_vec()),
            )
        };
        if suberror != KVM_INTERNAL_ERROR_EMULATION {
            return Ok(DomainFault::UnexpectedExit {
                reason: format!("KVM internal error, suberror {suberror}"),
            });
        }
        let ctx = HypercallContext {
            memory: &self.memory,
            console: &mut self.console,
        };
        let bytes = kvm_bytes
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| ctx.instruction_at(rip));
        Ok(DomainFault::EmulationFailure { rip, bytes })
    }
}

pub(super) fn unknown_port(port: u16, direction: &'static str, size: usize) -> DomainFault {
    DomainFault::UnknownHypercall {
        port,
        direction,
        size,
    }
}

/// Copies what the exit says out of the run area; an access to the domain's device is
/// served right here, while KVM's `data` buffer is at hand (a read's value must be in
/// it before the next KVM_RUN).
pub(super) fn copy_exit(
    exit: VcpuExit<'_>,
    device: Option<&mut BlkDevice>,
    memory: &DomainMemory,
) -> Exit {
    match exit {
        VcpuExit::IoOut(port, data) => {
            let mut value = [0u8; 4];
            let len = data.len().min(4);
            value[..len].copy_from_slice(&data[..len]);
            Exit::PortWrite {
                port,
                size: data.len(),
                value: u32::from_le_bytes(value),
            }
        }
        VcpuExit::IoIn(port, data) => Exit::PortRead {
            port,
            size: data.len(),
        },
        VcpuExit::MmioRead(gpa, data) => match device {
            Some(device) if BlkDevice::owns(gpa) => Exit::Device(device.mmio_read(gpa, data)),
            _ => Exit::Mmio {
                gpa,
                len: data.len(),
                write: false,
            },
        },
        VcpuExit::MmioWrite(gpa, data) => match device {
            Some(device) if BlkDevice::owns(gpa) => {
                Exit::Device(device.mmio_write(memory, gpa, data))
            }
            _ => Exit::Mmio {
                gpa,
                len: data.len(),
                write: true,
            },
        },
        VcpuExit::Hlt => Exit::Hlt,
        VcpuExit::Shutdown => Exit::Shutdown,
        VcpuExit::InternalError => Exit::InternalError,
        VcpuExit::Unsupported(KVM_EXIT_DIRTY_RING_FULL) => Exit::DirtyRingFull,
        VcpuExit::Debug(debug) => Exit::Debug {
            exception: debug.exception,
            pc: debug.pc,
            dr6: debug.dr6,
        },
        other => Exit::Other(format!("{other:?}")),
    }
}
