//! Declared writes in a VM (`virtio_seep::abi::declared`): a region of the guest's RAM
//! taken out of KVM's dirty log, whose written pages the guest logs itself.
//!
//! Why: KVM logs a page at its first write after it was protected (a trap, about a
//! third of an exit here) and the VMM copies a page it keeps writable at every
//! checkpoint. VFS's block cache is written a few bytes per page in most requests, so
//! under `fcopy` most of a VFS checkpoint was cache pages kept writable and copied
//! again and again. With the cache in a declared region, a checkpoint copies only the
//! pages VFS said it wrote since the last one.
//!
//! How: at the guest's `DeclareRegion` call the VMM checks the region and splits the
//! VM's RAM into three memory slots: below the region and above it logged as before
//! (slots [`SLOT_BELOW`] and [`SLOT_ABOVE`]), the region itself ([`SLOT_REGION`])
//! without dirty logging, so its pages are never protected again. At each checkpoint
//! and rollback the VMM reads the guest's log, takes its pages of the region as
//! written, and empties it. A rollback does not undo the region: the VMM writes it
//! back into the log's `declared` field, so a guest rolled back to before it named
//! the region still finds it named.
//!
//! Trust: a write into the region the guest did not log is not undone by a rollback
//! of that guest. Only the guest itself can be harmed: the region is its own RAM, the
//! VMM's own writes into it are tracked as everywhere else, and the region may not
//! hold the boot structures below the image or the image's code (whose writes decide
//! what vCPU state a rollback restores).
//!
//! Only in ring mode (`DirtyLog::is_ring`): the bitmap modes read slot 0 alone.

use std::ops::Range;

use kvm_bindings::{kvm_userspace_memory_region, KVM_MEM_LOG_DIRTY_PAGES};
use kvm_ioctls::VmFd;
use virtio_seep::abi::declared::{DeclaredLog, DECLARED_LOG_LEN, DECLARED_LOG_LEN_OFFSET};
use virtio_seep::abi::layout::{IMAGE_BASE, PAGE_SIZE};
use virtio_seep::abi::process::PageRange;
use vm_memory::{Bytes, GuestAddress};
use zerocopy::{FromBytes, IntoBytes};

use super::{Cpu, Domain, DomainError};
use crate::memory::DomainMemory;

/// The memory slot of the RAM below the region (and of all of it before a split).
pub(super) const SLOT_BELOW: u32 = 0;
/// The memory slot of the region: not logged.
pub(super) const SLOT_REGION: u32 = 1;
/// The memory slot of the RAM above the region, if any.
pub(super) const SLOT_ABOVE: u32 = 2;

/// Byte offset of the log's `declared` field.
const DECLARED_OFFSET: u64 = std::mem::offset_of!(DeclaredLog, declared) as u64;

/// Byte offset of the log's entries.
const PAGES_OFFSET: u64 = std::mem::offset_of!(DeclaredLog, pages) as u64;

/// A VM's declared region and its log.
#[derive(Debug)]
pub(super) struct DeclaredRegion {
    /// The region's guest pages.
    pages: Range<u64>,
    /// Guest address of the guest's [`DeclaredLog`] (inside RAM: checked at the call).
    log: u64,
    /// Pages of the region taken as written so far (each log entry, or the whole
    /// region per overflowed log).
    logged: u64,
    /// The log's entries as last read (kept to spare a buffer per look).
    entries: Vec<u32>,
}

impl Domain {
    /// Serves `DeclareRegion` with the guest's log at `log` (inside RAM): keeps the
    /// region the log requests if it can, and answers in the log's `declared` field.
    /// A process domain names its region in its control page: for it the call
    /// changes nothing.
    pub(super) fn declare_region(&mut self, log: u64) -> Result<(), DomainError> {
        let ram_pages = self.memory.size() / PAGE_SIZE;
        let tracked = self.checkpoints.is_some();
        let Cpu::Kvm(kvm) = &mut self.cpu else {
            return Ok(());
        };
        let mut bytes = [0u8; 8];
        // Inside RAM: checked at the call; an unreadable request is an empty one.
        let _ = self
            .memory
            .guest()
            .read_slice(&mut bytes, GuestAddress(log));
        let requested = PageRange::read_from_bytes(&bytes).unwrap_or_default();
        let requested =
            u64::from(requested.first)..u64::from(requested.first) + u64::from(requested.count);
        let answer = match &kvm.declared {
            // One region per domain; the same one again is no change.
            Some(region) if region.pages == requested => requested,
            Some(_) => 0..0,
            None => {
                let log_pages = log / PAGE_SIZE..(log + LOG_SIZE).div_ceil(PAGE_SIZE);
                if tracked
                    && kvm.has_dirty_ring()
                    && acceptable(&requested, ram_pages, &log_pages)
                    && !kvm.access.overlaps_code(&requested)
                {
                    split_slots(&kvm.vm, &self.memory, &requested).map_err(|source| {
                        DomainError::Run {
                            domain: self.name.clone(),
                            what: "KVM_SET_USER_MEMORY_REGION",
                            source,
                        }
                    })?;
                    if let Some(dirty_log) = &kvm.dirty_log {
                        dirty_log
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .set_slot_base(SLOT_ABOVE, requested.end);
                    }
                    kvm.declared = Some(DeclaredRegion {
                        pages: requested.clone(),
                        log,
                        logged: 0,
                        entries: vec![0; DECLARED_LOG_LEN],
                    });
                    requested
                } else {
                    0..0
                }
            }
        };
        write_declared(&self.memory, log, &answer);
        Ok(())
    }

    /// Sets in `written` the pages of the declared region the guest logged since the
    /// last call (all of them when its log overflowed), and empties the log.
    pub(super) fn take_declared_writes(&mut self) {
        let Cpu::Kvm(kvm) = &mut self.cpu else {
            return;
        };
        if let Some(region) = kvm.declared.as_mut() {
            region.take_into(&self.memory, &mut self.written);
            // The log's page needs no copy: the VMM leaves it the same at every look
            // (see `take_into`) and writes its region back after a rollback.
            let log = region.log..region.log + LOG_SIZE;
            super::checkpoint::forget_whole_pages(&mut self.written, &log);
        }
    }

    /// After a rollback: the region stays declared, whatever the restored log says.
    pub(super) fn restate_declared_region(&self) {
        if let Cpu::Kvm(kvm) = &self.cpu {
            if let Some(region) = &kvm.declared {
                write_declared(&self.memory, region.log, &region.pages);
            }
        }
    }

    /// Whether the guest can have a declared region: a domain that takes checkpoints,
    /// and for a VM one whose dirty log reads KVM's dirty ring.
    pub fn takes_declared_writes(&self) -> bool {
        match &self.cpu {
            Cpu::Process(_) => self.checkpoints.is_some(),
            Cpu::Kvm(kvm) => self.checkpoints.is_some() && kvm.has_dirty_ring(),
        }
    }

    /// Pages of a declared region the guest logged itself so far (each a copy at a
    /// checkpoint without a trap), on either substrate; `None` without a region.
    pub fn declared_pages_logged(&self) -> Option<u64> {
        match &self.cpu {
            Cpu::Kvm(kvm) => kvm.declared.as_ref().map(|region| region.logged),
            Cpu::Process(_) => self
                .write_tracking()
                .filter(|stats| stats.declared > 0)
                .map(|stats| stats.declared),
        }
    }
}

impl DeclaredRegion {
    fn take_into(&mut self, memory: &DomainMemory, written: &mut [u64]) {
        let header = GuestAddress(self.log + DECLARED_LOG_LEN_OFFSET as u64);
        // Checked at the call: the log lies inside RAM. Should a read fail anyway, the
        // whole region counts as written.
        let mut bytes = [0u8; 8];
        let (len, overflow) = match memory.guest().read_slice(&mut bytes, header) {
            Ok(()) => (
                u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")),
                u32::from_le_bytes(bytes[4..].try_into().expect("4 bytes")),
            ),
            Err(_) => (0, 1),
        };
        if len == 0 && overflow == 0 {
            return;
        }
        let len = (len as usize).min(DECLARED_LOG_LEN);
        let entries = &mut self.entries[..len];
        let pages = GuestAddress(self.log + PAGES_OFFSET);
        let read = memory.guest().read_slice(entries.as_mut_bytes(), pages);
        let overflowed = overflow != 0 || read.is_err();
        self.logged += mark_logged(&self.pages, entries, overflowed, written);
        // Emptied, entries too, without marking the page written: after every look the
        // log holds its region and nothing else, so a checkpoint need not copy it and a
        // rollback need not restore it (`Domain::take_declared_writes`).
        entries.fill(0);
        let _ = memory.write_transient(entries.as_bytes(), pages);
        let _ = memory.write_transient(&[0; 8], header);
    }
}

impl super::KvmCpu {
    /// Whether the VM's dirty log reads KVM's dirty ring, which a declared region
    /// needs (the bitmap modes read one memory slot).
    fn has_dirty_ring(&self) -> bool {
        self.dirty_log.as_ref().is_some_and(|log| {
            log.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .is_ring()
        })
    }
}

/// Bytes of a [`DeclaredLog`].
const LOG_SIZE: u64 = std::mem::size_of::<DeclaredLog>() as u64;

/// Whether guest pages `requested` may be a declared region of a VM with `ram_pages`
/// pages whose log lies in `log_pages`: not empty, inside RAM above the boot
/// structures, and clear of the log (whose writes must stay tracked).
fn acceptable(requested: &Range<u64>, ram_pages: u64, log_pages: &Range<u64>) -> bool {
    !requested.is_empty()
        && requested.start >= IMAGE_BASE / PAGE_SIZE
        && requested.end <= ram_pages
        && (requested.end <= log_pages.start || log_pages.end <= requested.start)
}

/// Sets in `written` the pages of `region` the log's `entries` name (entries outside
/// it are ignored), or the whole region when the log `overflowed`. Returns the pages
/// taken.
fn mark_logged(region: &Range<u64>, entries: &[u32], overflowed: bool, written: &mut [u64]) -> u64 {
    let mut set = |page: u64| {
        if let Some(word) = usize::try_from(page / 64)
            .ok()
            .and_then(|w| written.get_mut(w))
        {
            *word |= 1 << (page % 64);
        }
    };
    if overflowed {
        region.clone().for_each(&mut set);
        return region.end - region.start;
    }
    let mut taken = 0;
    for page in entries.iter().map(|&page| u64::from(page)) {
        if region.contains(&page) {
            set(page);
            taken += 1;
        }
    }
    taken
}

/// Writes `pages` into the `declared` field of the log at `log` (and empties the log),
/// without marking the page written (see `take_into`).
fn write_declared(memory: &DomainMemory, log: u64, pages: &Range<u64>) {
    let range = PageRange {
        first: u32::try_from(pages.start).unwrap_or(0),
        count: u32::try_from(pages.end - pages.start).unwrap_or(0),
    };
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(range.as_bytes());
    // Inside RAM: checked at the call.
    let _ = memory.write_transient(&bytes, GuestAddress(log + DECLARED_OFFSET));
}

/// Splits the VM's one memory slot into the RAM below `region`, the region without
/// dirty logging, and the RAM above it.
fn split_slots(
    vm: &VmFd,
    memory: &DomainMemory,
    region: &Range<u64>,
) -> Result<(), kvm_ioctls::Error> {
    let end = memory.size() / PAGE_SIZE;
    let slot = |slot: u32, pages: Range<u64>, flags: u32| kvm_userspace_memory_region {
        slot,
        flags,
        guest_phys_addr: pages.start * PAGE_SIZE,
        memory_size: (pages.end - pages.start) * PAGE_SIZE,
        userspace_addr: memory.host_base() + pages.start * PAGE_SIZE,
    };
    let slots = [
        // Deleted first: slots may not overlap.
        slot(SLOT_BELOW, 0..0, 0),
        slot(SLOT_BELOW, 0..region.start, KVM_MEM_LOG_DIRTY_PAGES),
        slot(SLOT_REGION, region.clone(), 0),
        slot(SLOT_ABOVE, region.end..end, KVM_MEM_LOG_DIRTY_PAGES),
    ];
    for region in slots {
        // A slot of nothing above a region that ends with RAM: nothing to make.
        if region.memory_size == 0 && region.slot != SLOT_BELOW {
            continue;
        }
        // SAFETY: each slot maps a part of `memory`'s single mapping, at the same
        // offset as the guest addresses it covers, and the parts do not overlap; the
        // domain keeps the mapping for as long as the VM exists (see the field order of
        // `Domain`). Deleting slot 0 first leaves no overlap between old and new.
        unsafe { vm.set_user_memory_region(region) }?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_must_lie_in_ram_above_the_boot_structures_and_clear_of_its_log() {
        let first = IMAGE_BASE / PAGE_SIZE;
        let log = 0x300..0x301;
        assert!(acceptable(&(first..first + 16), 1024, &log));
        assert!(
            acceptable(&(0x301..0x400), 1024, &log),
            "right after the log"
        );
        assert!(!acceptable(&(first..first), 1024, &log), "empty");
        assert!(
            !acceptable(&(first - 1..first + 16), 1024, &log),
            "boot structures"
        );
        assert!(!acceptable(&(0x3f0..0x401), 1024, &log), "beyond RAM");
        assert!(!acceptable(&(0x2f0..0x310), 1024, &log), "over the log");
    }

    #[test]
    fn logged_pages_outside_the_region_are_ignored_and_an_overflow_takes_it_all() {
        let region = 0x100..0x140;
        let mut written = vec![0u64; 8];
        let taken = mark_logged(
            &region,
            &[0x100, 0x13f, 0x140, 0xff, u32::MAX],
            false,
            &mut written,
        );
        assert_eq!(taken, 2);
        assert_eq!(
            crate::checkpoint::pages(&written).collect::<Vec<_>>(),
            [0x100, 0x13f]
        );
        let mut written = vec![0u64; 8];
        assert_eq!(mark_logged(&region, &[], true, &mut written), 0x40);
        assert_eq!(
            crate::checkpoint::pages(&written).collect::<Vec<_>>(),
            (0x100..0x140).collect::<Vec<_>>()
        );
    }
}
