//! Checkpoints and rollback of a domain: the pages written since the last checkpoint
//! (KVM's dirty log and the VMM's own writes), copied into or back from the
//! [`CheckpointStore`], with the vCPU and device state.

use std::ops::Range;
use std::sync::MutexGuard;

use virtio_seep::abi::layout::PAGE_SIZE;

use crate::checkpoint::{CpuState, Poison, StoreState};
use crate::devices::blk::BlkDevice;
use crate::dirty_log::DirtyLog;

use super::{Cpu, Domain, DomainError, DomainState};

impl Domain {
    /// Number of pages the guest wrote since the last call (KVM's dirty log, or a
    /// process domain's write log; the domain must have been created with
    /// `dirty_log`), every page protected again. Pages the VMM writes into the
    /// guest are not counted: KVM logs only the guest's own writes.
    pub fn take_dirty_pages(&self) -> Result<usize, DomainError> {
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        if let Cpu::Process(process) = &self.cpu {
            let mut bitmap = vec![0u64; (size / 4096).div_ceil(64)];
            process
                .take_written(&mut bitmap, true)
                .map_err(|source| DomainError::PageScan {
                    domain: self.name.clone(),
                    source,
                })?;
            return Ok(bitmap.iter().map(|word| word.count_ones() as usize).sum());
        }
        let kvm = self.kvm("dirty log")?;
        let mut log = self.dirty_log()?;
        log.take_all(&kvm.vm, size)
            .map_err(|source| self.run_error("KVM_GET_DIRTY_LOG", source))
    }

    /// What the write tracking of a process domain did (`None` for a VM, or a process
    /// domain created without `dirty_log`).
    pub fn write_tracking(&self) -> Option<super::process::TrackingStats> {
        match &self.cpu {
            Cpu::Process(process) => process.tracking_stats(),
            Cpu::Kvm(_) => None,
        }
    }

    /// The guest's writes that trapped so far, each a first write to a page protected
    /// for the tracking (KVM's dirty ring, or a process domain's write log); `None`
    /// without tracking, or where the log does not count them (KVM's bitmap modes).
    pub fn trapped_writes(&self) -> Option<u64> {
        match &self.cpu {
            Cpu::Process(process) => process.tracking_stats().map(|stats| stats.logged),
            Cpu::Kvm(kvm) => kvm.dirty_log.as_ref().and_then(|log| {
                log.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .trapped_writes()
            }),
        }
    }

    /// The dirty log (`NoCheckpoints` for a domain created without `dirty_log`).
    pub(super) fn dirty_log(&self) -> Result<MutexGuard<'_, DirtyLog>, DomainError> {
        let log = self
            .kvm("dirty log")?
            .dirty_log
            .as_ref()
            .ok_or(DomainError::NoCheckpoints)?;
        Ok(log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    /// Takes a checkpoint: the pages written since the previous one (by the guest or by
    /// the VMM) go into the checkpoint store, with the vCPU state (see `vcpu_state`)
    /// and the device's. Returns the pages copied. The domain must have been created
    /// with `dirty_log`, and must not have stopped. Pages of the image's stack wholly
    /// below the stack pointer are left out: frames that returned, which the domain
    /// writes before it reads them again (see `dead_stack`).
    ///
    /// A checkpoint that fails at any step (an ioctl, a page copy) leaves the domain
    /// *poisoned*: [`rollback`](Self::rollback) refuses with
    /// [`DomainError::Poisoned`] until a later checkpoint succeeds completely, so a
    /// rollback never restores a mix of two states.
    pub fn checkpoint(&mut self) -> Result<usize, DomainError> {
        if self.checkpoints.is_none() {
            return Err(DomainError::NoCheckpoints);
        }
        let taken = self.try_checkpoint();
        let store = self.checkpoints.as_mut().expect("checked above");
        if taken.is_err() {
            store.poison(Poison::Checkpoint);
        }
        taken
    }

    fn try_checkpoint(&mut self) -> Result<usize, DomainError> {
        if let DomainState::Stopped(exit) = &self.state {
            return Err(DomainError::AlreadyStopped {
                domain: self.name.clone(),
                exit: exit.clone(),
            });
        }
        let code_written = self.look_for_written()? || self.code_written_pending;
        // Kept until a checkpoint completes: a failed one may have copied the code
        // pages out of `written` already.
        self.code_written_pending = code_written;
        let store = self.checkpoints.as_mut().expect("checked by checkpoint");
        let vcpu = match &mut self.cpu {
            Cpu::Kvm(kvm) => CpuState::Vm(
                kvm.access
                    .read(&kvm.vcpu, store.vcpu().and_then(CpuState::vm), code_written)
                    .map_err(|(what, source)| DomainError::Run {
                        domain: self.name.clone(),
                        what,
                        source,
                    })?,
            ),
            Cpu::Process(process) => {
                process.checkpoint_fpu();
                CpuState::Process {
                    regs: process.regs(),
                }
            }
        };
        if let Some(below) = self
            .stack
            .as_ref()
            .and_then(|stack| dead_stack(stack, &vcpu))
        {
            forget_whole_pages(&mut self.written, &below);
        }
        let copied = store
            .capture(&self.memory, &mut self.written)
            .map_err(|source| DomainError::PageCopy {
                domain: self.name.clone(),
                source,
            })?;
        store.complete(vcpu);
        self.code_written_pending = false;
        self.device_checkpoint = self.device.as_ref().map(BlkDevice::snapshot);
        Ok(copied)
    }

    /// Has the FPU state read at every checkpoint (for a guest that uses floating
    /// point; see `vcpu_state`), instead of at the first one and checked at rollback.
    pub fn save_fpu_at_every_checkpoint(&mut self) {
        // A process domain's FPU state is in every exit's report: always saved.
        if let Cpu::Kvm(kvm) = &mut self.cpu {
            kvm.access.fpu_every_checkpoint = true;
        }
    }

    /// Rolls the domain back to its last checkpoint: memory byte-identical to it (but
    /// for the dead stack the checkpoint left out, see [`checkpoint`](Self::checkpoint)),
    /// vCPU as it was, the domain `Ready` again (whatever stopped it). Returns the
    /// pages restored.
    ///
    /// Refused, changing nothing, without a checkpoint ([`DomainError::NoCheckpoints`])
    /// or when the last checkpoint or rollback failed ([`DomainError::Poisoned`]). A
    /// rollback that fails part way poisons the domain and leaves it stopped.
    pub fn rollback(&mut self) -> Result<usize, DomainError> {
        let store = self
            .checkpoints
            .as_mut()
            .ok_or(DomainError::NoCheckpoints)?;
        match store.state() {
            StoreState::Ready => {}
            StoreState::Empty => return Err(DomainError::NoCheckpoints),
            StoreState::Poisoned(cause) => {
                return Err(DomainError::Poisoned {
                    domain: self.name.clone(),
                    cause,
                })
            }
        }
        let rolled = self.try_rollback();
        if rolled.is_err() {
            let store = self.checkpoints.as_mut().expect("checked above");
            store.poison(Poison::Rollback);
        }
        rolled
    }

    fn try_rollback(&mut self) -> Result<usize, DomainError> {
        if let Cpu::Kvm(kvm) = &mut self.cpu {
            let store = self.checkpoints.as_ref().expect("checked by rollback");
            let vcpu = store.vcpu().and_then(CpuState::vm);
            let vcpu = vcpu.expect("a Ready store of a VM holds a vCPU state");
            // Part of the state may have been carried over from an earlier checkpoint
            // (see `vcpu_state`): valid only if the guest has not changed it since.
            let changed =
                kvm.access
                    .carried_state_changed(&kvm.vcpu, vcpu)
                    .map_err(|(what, source)| DomainError::Run {
                        domain: self.name.clone(),
                        what,
                        source,
                    })?;
            if let Some(what) = changed {
                return Err(DomainError::CarriedStateChanged {
                    domain: self.name.clone(),
                    what,
                });
            }
        }
        if let Cpu::Process(process) = &mut self.cpu {
            // Nothing to resume: a restart, not a rollback, brings the domain back.
            if !process.alive() {
                return Err(DomainError::ProcessGone {
                    domain: self.name.clone(),
                    status: "killed or crashed outside the guest".into(),
                });
            }
        }
        let code_written = self.look_for_written()?;
        let store = self.checkpoints.as_ref().expect("checked by rollback");
        let restored = store
            .restore(&self.memory, &mut self.written)
            .map_err(|source| DomainError::PageCopy {
                domain: self.name.clone(),
                source,
            })?;
        // The restore itself went through the VMM's bitmap; those pages now equal the
        // checkpoint, so they are not "written since".
        self.memory.take_vmm_written();
        self.restate_declared_region();
        let state = store.vcpu().expect("a Ready store holds a CPU state");
        match (&mut self.cpu, state) {
            (Cpu::Kvm(kvm), CpuState::Vm(vcpu)) => {
                let privileged = vcpu.tainted || code_written;
                kvm.access
                    .write(&mut kvm.vcpu, vcpu, privileged)
                    .map_err(|(what, source)| DomainError::Run {
                        domain: self.name.clone(),
                        what,
                        source,
                    })?;
            }
            (Cpu::Process(process), CpuState::Process { regs }) => {
                process.set_regs(regs);
                process.rollback_fpu();
            }
            _ => unreachable!("a domain's checkpoints are of its own substrate"),
        }
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
    /// KVM's log of the guest's writes, the guest's log of its declared region and the
    /// VMM's own. Returns whether the guest wrote its own code (see `vcpu_state`: it
    /// may have run code at CPL0).
    fn look_for_written(&mut self) -> Result<bool, DomainError> {
        if self.checkpoints.is_none() {
            return Err(DomainError::NoCheckpoints);
        }
        let size = usize::try_from(self.memory.size()).expect("RAM fits usize");
        // Zero already (see `written`), unless a checkpoint failed half way: then it
        // keeps the pages that checkpoint did not copy.
        self.written.resize((size / 4096).div_ceil(64), 0);
        let code_written = match &mut self.cpu {
            Cpu::Kvm(kvm) => {
                let log = kvm.dirty_log.as_ref().ok_or(DomainError::NoCheckpoints)?;
                let looked = log
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .look(&kvm.vm, size, &mut self.written);
                if let Err(source) = looked {
                    return Err(self.run_error("KVM_GET_DIRTY_LOG", source));
                }
                // Before the VMM's own writes join: loading the image wrote the code
                // pages.
                kvm.access.code_written(&self.written)
            }
            Cpu::Process(process) => {
                process
                    .take_written(&mut self.written, false)
                    .map_err(|source| DomainError::PageScan {
                        domain: self.name.clone(),
                        source,
                    })?;
                // A process domain has no privileged state its code could change.
                false
            }
        };
        self.take_declared_writes();
        self.memory.take_vmm_written_into(&mut self.written);
        Ok(code_written)
    }
}

/// Bytes below the stack pointer that code may still use without moving it (the
/// x86-64 System V red zone): they stay part of the checkpoint. The guest runtime
/// builds without a red zone; the margin keeps an image built otherwise safe.
const RED_ZONE: u64 = 128;

/// The part of `stack` below the stack pointer of `vcpu` (and its red zone): frames
/// that returned, which nothing reads before writing them again. `None` when the
/// stack pointer is not on this stack (the guest may point it anywhere).
fn dead_stack(stack: &Range<u64>, vcpu: &CpuState) -> Option<Range<u64>> {
    let rsp = match vcpu {
        CpuState::Vm(state) => state.regs.rsp,
        CpuState::Process { regs } => regs.rsp,
    };
    (stack.start..=stack.end)
        .contains(&rsp)
        .then(|| stack.start..rsp.saturating_sub(RED_ZONE).max(stack.start))
}

/// Clears in `bitmap` (one bit per page) the pages that lie wholly inside `range` of
/// guest-physical addresses; bits beyond the bitmap are left alone.
pub(super) fn forget_whole_pages(bitmap: &mut [u64], range: &Range<u64>) {
    let first = range.start.div_ceil(PAGE_SIZE);
    let end = (range.end / PAGE_SIZE).min(bitmap.len() as u64 * 64);
    let mut page = first;
    while page < end {
        let (word, bit) = ((page / 64) as usize, page % 64);
        let run = (64 - bit).min(end - page);
        let mask = if run == 64 {
            u64::MAX
        } else {
            ((1u64 << run) - 1) << bit
        };
        bitmap[word] &= !mask;
        page += run;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rsp: u64) -> CpuState {
        CpuState::Process {
            regs: virtio_seep::abi::process::Regs {
                rsp,
                ..Default::default()
            },
        }
    }

    #[test]
    fn the_dead_stack_is_below_the_red_zone_and_only_on_the_stack() {
        let stack = 0x1_0000..0x2_0000;
        assert_eq!(dead_stack(&stack, &at(0x1_8000)), Some(0x1_0000..0x1_7f80));
        assert_eq!(dead_stack(&stack, &at(0x2_0000)), Some(0x1_0000..0x1_ff80));
        assert_eq!(
            dead_stack(&stack, &at(0x1_0040)),
            Some(0x1_0000..0x1_0000),
            "within the red zone of the bottom: nothing"
        );
        assert_eq!(dead_stack(&stack, &at(0x2_0008)), None, "above the stack");
        assert_eq!(dead_stack(&stack, &at(0x8000)), None, "below the stack");
    }

    #[test]
    fn only_pages_wholly_inside_the_range_are_forgotten() {
        let mut bitmap = vec![u64::MAX; 4];
        // Pages 1 (partly), 2..=65 (wholly), 66 (partly).
        forget_whole_pages(&mut bitmap, &(0x1800..0x42800));
        let kept: Vec<u64> = crate::checkpoint::pages(&bitmap).collect();
        let expected: Vec<u64> = [0, 1].into_iter().chain(66..256).collect();
        assert_eq!(kept, expected);
    }

    #[test]
    fn a_range_beyond_the_bitmap_or_empty_changes_nothing_outside_it() {
        let mut bitmap = vec![u64::MAX; 2];
        forget_whole_pages(&mut bitmap, &(0x7f000..u64::MAX));
        assert_eq!(bitmap, [u64::MAX, u64::MAX >> 1], "only page 127 is inside");
        forget_whole_pages(&mut bitmap, &(0x5000..0x5fff));
        // A reversed range, as a hostile image's stack symbols could make.
        let reversed = Range {
            start: 0x9000,
            end: 0x8000,
        };
        forget_whole_pages(&mut bitmap, &reversed);
        assert_eq!(bitmap, [u64::MAX, u64::MAX >> 1]);
    }
}
