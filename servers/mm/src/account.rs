//! One process's memory: its heap size and its regions.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};
use ankh_proto::mm::{Region, PAGE};

/// Where region handles of every process start (page-aligned, far from 0 so that a
/// zeroed `Region` never names one).
pub(crate) const REGION_BASE: u64 = 1 << 32;

/// `len` rounded up to whole pages; `EINVAL` for 0, `ENOMEM` when it overflows.
pub(crate) fn round_to_pages(len: u64) -> Result<u64, Errno> {
    if len == 0 {
        return Err(errno::EINVAL);
    }
    len.div_ceil(PAGE).checked_mul(PAGE).ok_or(errno::ENOMEM)
}

/// A process's heap and regions.
pub(crate) struct Account {
    /// Heap size in bytes.
    heap: u64,
    /// Region lengths by address.
    regions: BTreeMap<u64, u64>,
    /// The next region's address: handles only grow, so none is reused.
    next: u64,
}

impl Default for Account {
    fn default() -> Account {
        Account {
            heap: 0,
            regions: BTreeMap::new(),
            next: REGION_BASE,
        }
    }
}

impl Account {
    /// Heap size.
    pub(crate) fn heap(&self) -> u64 {
        self.heap
    }

    /// Sets the heap size (the caller checked the limits).
    pub(crate) fn set_heap(&mut self, size: u64) {
        self.heap = size;
    }

    /// Bytes used: heap plus regions (the limits keep it from overflowing).
    pub(crate) fn used(&self) -> u64 {
        self.regions.values().fold(self.heap, |sum, len| sum + len)
    }

    /// The regions, sorted by address.
    pub(crate) fn regions(&self) -> Vec<Region> {
        self.regions
            .iter()
            .map(|(&addr, &len)| Region { addr, len })
            .collect()
    }

    /// Adds a region of `len` bytes (whole pages, checked against the limits) at a
    /// fresh address; `ENOMEM` when the handle space is used up.
    pub(crate) fn map(&mut self, len: u64) -> Result<u64, Errno> {
        let addr = self.next;
        self.next = addr.checked_add(len).ok_or(errno::ENOMEM)?;
        self.regions.insert(addr, len);
        Ok(addr)
    }

    /// Removes `region`, which must match one exactly (`EINVAL` otherwise).
    pub(crate) fn unmap(&mut self, region: Region) -> Result<(), Errno> {
        match self.regions.get(&region.addr) {
            Some(&len) if len == region.len => {
                self.regions.remove(&region.addr);
                Ok(())
            }
            _ => Err(errno::EINVAL),
        }
    }
}
