//! Checkpoints and rollback of a domain: the pages written since the last checkpoint
//! (KVM's dirty log and the VMM's own writes), copied into or back from the
//! [`CheckpointStore`], with the vCPU and device state.

use std::sync::MutexGuard;

use crate::checkpoint::CheckpointStore;
use crate::devices::blk::BlkDevice;
use crate::dirty_log::DirtyLog;

use super::{Domain, DomainError, DomainState};

impl Domain {
    /// Number of pages the guest wrote since the last call (KVM's dirty log; the
    /// domain must have been created with `dirty_log`). Pages the VMM writes into the
    /// guest are not counted: KVM logs only the guest's own writes.
    pub fn take_dirty_pages(&self) -> Result<usize, DomainError> {
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        let mut log = self.dirty_log()?;
        log.take_all(&self.vm, size)
            .map_err(|source| self.run_error("KVM_GET_DIRTY_LOG", source))
    }

    /// The dirty log (`NoCheckpoints` for a domain created without `dirty_log`).
    pub(super) fn dirty_log(&self) -> Result<MutexGuard<'_, DirtyLog>, DomainError> {
        let log = self.dirty_log.as_ref().ok_or(DomainError::NoCheckpoints)?;
        Ok(log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes a checkpoint: the pages written since the previous one (by the guest or by
    /// the VMM) go into the checkpoint store, with the vCPU state. Returns the pages
    /// copied. The domain must have been created with `dirty_log`, and must not have
    /// stopped.
    pub fn checkpoint(&mut self) -> Result<usize, DomainError> {
        self.look_for_written()?;
        let regs = self.regs()?;
        // Segment, control and x87 state do not change while a guest serves requests
        // (it runs at CPL3, or at CPL0 without touching them, and uses no floats), so
        // they are read at the first checkpoint only: each read is an ioctl of about
        // 2 us, a sizeable part of a checkpoint. Debug builds check the assumption.
        let saved = self.checkpoints.as_ref().and_then(CheckpointStore::vcpu);
        let first = match saved {
            Some(saved) => {
                debug_assert_eq!(self.vcpu.get_sregs().ok(), Some(saved.sregs));
                debug_assert_eq!(self.vcpu.get_fpu().ok(), Some(saved.fpu));
                None
            }
            None => Some((
                self.vcpu
                    .get_sregs()
                    .map_err(|source| self.run_error("KVM_GET_SREGS", source))?,
                self.vcpu
                    .get_fpu()
                    .map_err(|source| self.run_error("KVM_GET_FPU", source))?,
            )),
        };
        let store = self
            .checkpoints
            .as_mut()
            .ok_or(DomainError::NoCheckpoints)?;
        store.keep_vcpu(regs, first);
        self.device_checkpoint = self.device.as_ref().map(BlkDevice::snapshot);
        Ok(store.capture(&self.memory, &mut self.written))
    }

    /// Rolls the domain back to its last checkpoint: memory byte-identical to it, vCPU
    /// as it was, the domain `Ready` again (whatever stopped it). Returns the pages
    /// restored.
    pub fn rollback(&mut self) -> Result<usize, DomainError> {
        self.look_for_written()?;
        let store = self
            .checkpoints
            .as_ref()
            .ok_or(DomainError::NoCheckpoints)?;
        let vcpu = store.vcpu().ok_or(DomainError::NoCheckpoints)?.clone();
        let restored = store.restore(&self.memory, &mut self.written);
        // The restore itself went through the VMM's bitmap; those pages now equal the
        // checkpoint, so they are not "written since".
        self.memory.take_vmm_written();
        let error = |what| {
            let domain = self.name.clone();
            move |source| DomainError::Run {
                domain,
                what,
                source,
            }
        };
        self.vcpu
            .set_sregs(&vcpu.sregs)
            .map_err(error("KVM_SET_SREGS"))?;
        self.vcpu
            .set_regs(&vcpu.regs)
            .map_err(error("KVM_SET_REGS"))?;
        self.vcpu.set_fpu(&vcpu.fpu).map_err(error("KVM_SET_FPU"))?;
        self.note_regs(&vcpu.regs);
        if let (Some(device), Some(snapshot)) = (&mut self.device, &self.device_checkpoint) {
            device.restore(snapshot);
        }
        self.state = DomainState::Ready;
        Ok(restored)
    }

    /// A hash of the domain's whole RAM (tests compare memory before and after a
    /// rollback with it).
    pub fn memory_hash(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut bytes = vec![0u8; usize::try_from(self.memory.size()).expect("RAM fits")];
        // Reading all of RAM cannot fail: the range is exactly the region.
        let _ = vm_memory::Bytes::read_slice(
            self.memory.guest(),
            &mut bytes,
            vm_memory::GuestAddress(0),
        );
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        bytes.hash(&mut hasher);
        hasher.finish()
    }

    /// Sets `written` to the pages written since the last checkpoint or rollback:
    /// KVM's log of the guest's writes and the VMM's own.
    fn look_for_written(&mut self) -> Result<(), DomainError> {
        let (Some(_), Some(log)) = (&self.checkpoints, &self.dirty_log) else {
            return Err(DomainError::NoCheckpoints);
        };
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        // Zero already (see `written`), unless a look failed half way: then it keeps
        // a few more pages, which costs copies, never correctness.
        self.written.resize((size / 4096).div_ceil(64), 0);
        let looked = log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .look(&self.vm, size, &mut self.written);
        looked.map_err(|source| self.run_error("KVM_GET_DIRTY_LOG", source))?;
        self.memory.take_vmm_written_into(&mut self.written);
        Ok(())
    }
}
