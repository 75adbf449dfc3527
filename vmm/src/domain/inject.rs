//! Fault injection: the VMM breaks a guest on purpose (tests, `ankh demo`, the control
//! socket's kills), in ways the CPU then detects by itself.

use super::{Domain, DomainError};

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
        self.vcpu
            .set_regs(&regs)
            .map_err(|source| self.run_error("KVM_SET_REGS", source))?;
        self.note_regs(&regs);
        Ok(())
    }
}
