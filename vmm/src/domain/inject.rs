//! Fault injection: the VMM breaks a guest on purpose (tests, `ankh demo`, the control
//! socket's kills), in ways the CPU then detects by itself.

use super::{Domain, DomainError};
use crate::checkpoint::CpuState;

impl Domain {
    /// Fault injection: makes the guest spin where it stands (the VMM writes a
    /// jump-to-itself at its instruction pointer), so that the next run hangs without
    /// exits until the watchdog stops it. A rollback restores the code page (the VMM's
    /// write is in vm-memory's dirty bitmap); a restart reloads it.
    pub fn inject_hang(&mut self) -> Result<(), DomainError> {
        const JUMP_TO_SELF: [u8; 2] = [0xeb, 0xfe];
        let rip = self.regs()?.rip;
        vm_memory::Bytes::write_slice(
            self.memory.guest(),
            &JUMP_TO_SELF,
            vm_memory::GuestAddress(rip),
        )
        .map_err(|_| DomainError::Inject {
            domain: self.name.clone(),
            what: "its instruction pointer is outside its RAM",
        })
    }

    /// Fault injection: gives the guest a non-canonical stack pointer, so that its next
    /// stack access faults by itself (detected by the CPU, not by the VMM).
    pub fn corrupt_stack(&mut self) -> Result<(), DomainError> {
        let mut regs = self.regs()?;
        regs.rsp = 0xdead_0000_0000_0000;
        self.set_regs(&regs)
    }

    /// Test hook: the next checkpoint fails after copying `pages` pages, as if the
    /// next page copy failed, to check that a failed checkpoint poisons the domain.
    #[doc(hidden)]
    pub fn fail_next_checkpoint_after(&mut self, pages: usize) -> Result<(), DomainError> {
        self.checkpoints
            .as_mut()
            .ok_or(DomainError::NoCheckpoints)?
            .fail_next_capture_after(pages);
        Ok(())
    }

    /// Test hook: whether the last complete checkpoint is tainted (code at CPL0 other
    /// than the image's stubs may have run: its privileged vCPU state was read).
    /// `None` without a complete checkpoint.
    #[doc(hidden)]
    pub fn checkpoint_tainted(&self) -> Option<bool> {
        let store = self.checkpoints.as_ref()?;
        store
            .has_checkpoint()
            .then(|| store.vcpu().and_then(CpuState::vm).map(|vcpu| vcpu.tainted))
            .flatten()
    }

    /// Test hook: the vCPU's special registers, events and floating-point state, read
    /// with ioctls (not from the run page), to check that a rollback restores them.
    #[doc(hidden)]
    pub fn vcpu_snapshot(&self) -> Result<VcpuSnapshot, DomainError> {
        let error = |what| move |source| self.run_error(what, source);
        let kvm = self.kvm("vCPU snapshot")?;
        Ok(VcpuSnapshot {
            sregs: kvm.vcpu.get_sregs().map_err(error("KVM_GET_SREGS"))?,
            events: kvm
                .vcpu
                .get_vcpu_events()
                .map_err(error("KVM_GET_VCPU_EVENTS"))?,
            fpu: kvm.vcpu.get_fpu().map_err(error("KVM_GET_FPU"))?,
            xsave: kvm
                .vcpu
                .get_xsave()
                .map_err(error("KVM_GET_XSAVE"))?
                .region
                .to_vec(),
            debugregs: kvm
                .vcpu
                .get_debug_regs()
                .map_err(error("KVM_GET_DEBUGREGS"))?,
        })
    }
}

/// What [`Domain::vcpu_snapshot`] reads.
#[doc(hidden)]
#[derive(Debug, PartialEq)]
pub struct VcpuSnapshot {
    /// Segment, control and descriptor-table registers.
    pub sregs: kvm_bindings::kvm_sregs,
    /// vCPU events.
    pub events: kvm_bindings::kvm_vcpu_events,
    /// x87 and SSE state.
    pub fpu: kvm_bindings::kvm_fpu,
    /// The XSAVE area.
    pub xsave: Vec<u32>,
    /// Debug registers.
    pub debugregs: kvm_bindings::kvm_debugregs,
}
