//! What each owner is charged, and the store's totals, against the bounds of
//! [`ankh_proto::ds`]: a key costs [`entry_cost`] bytes to the domain that last
//! published it.

use alloc::collections::BTreeMap;

use ankh_proto::ds::{ENTRIES_MAX, OWNER_BYTES_MAX, OWNER_ENTRIES_MAX, STORE_BYTES_MAX};
use ankh_proto::errno::{self, Errno};
use ankh_proto::Pid;

pub(crate) use ankh_proto::ds::entry_cost;

/// Keys and bytes charged to one owner, or to the whole store.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Keys.
    pub entries: usize,
    /// Bytes ([`entry_cost`] of each key).
    pub bytes: usize,
}

impl Usage {
    fn add(&mut self, cost: usize) {
        self.entries += 1;
        self.bytes += cost;
    }

    fn remove(&mut self, cost: usize) {
        self.entries = self.entries.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(cost);
    }

    /// True when adding a key of `cost` bytes keeps within `entries` and `bytes`.
    fn has_room(&self, cost: usize, entries: usize, bytes: usize) -> bool {
        self.entries < entries && self.bytes.saturating_add(cost) <= bytes
    }
}

/// The charges of every owner holding a key, and their sum.
#[derive(Default)]
pub(crate) struct Ledger {
    owners: BTreeMap<Pid, Usage>,
    total: Usage,
}

impl Ledger {
    /// What `owner` is charged.
    pub(crate) fn of(&self, owner: Pid) -> Usage {
        self.owners.get(&owner).copied().unwrap_or_default()
    }

    /// The whole store.
    pub(crate) fn total(&self) -> Usage {
        self.total
    }

    /// `ENOSPC` unless `owner` may take a key of `cost` bytes, after giving back
    /// one of `released` bytes (the key's old value, when `owner` held it) if any.
    pub(crate) fn check(
        &self,
        owner: Pid,
        cost: usize,
        released: Option<(Pid, usize)>,
    ) -> Result<(), Errno> {
        let mut total = self.total;
        let mut mine = self.of(owner);
        if let Some((old_owner, old_cost)) = released {
            total.remove(old_cost);
            if old_owner == owner {
                mine.remove(old_cost);
            }
        }
        let fits = total.has_room(cost, ENTRIES_MAX, STORE_BYTES_MAX)
            && mine.has_room(cost, OWNER_ENTRIES_MAX, OWNER_BYTES_MAX);
        if fits {
            Ok(())
        } else {
            Err(errno::ENOSPC)
        }
    }

    /// True when `owner` could take over a key of `cost` bytes within its quota
    /// (the store's total does not change: the key is already charged).
    pub(crate) fn may_inherit(&self, owner: Pid, cost: usize) -> bool {
        self.of(owner)
            .has_room(cost, OWNER_ENTRIES_MAX, OWNER_BYTES_MAX)
    }

    /// Charges a key of `cost` bytes to `owner`.
    pub(crate) fn charge(&mut self, owner: Pid, cost: usize) {
        self.owners.entry(owner).or_default().add(cost);
        self.total.add(cost);
    }

    /// Gives back a key of `cost` bytes that `owner` held.
    pub(crate) fn release(&mut self, owner: Pid, cost: usize) {
        if let Some(usage) = self.owners.get_mut(&owner) {
            usage.remove(cost);
            if usage.entries == 0 {
                self.owners.remove(&owner);
            }
        }
        self.total.remove(cost);
    }
}
