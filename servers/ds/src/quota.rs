//! What each owner and each session is charged, and the store's totals, against the
//! bounds of [`ankh_proto::ds`]: a key costs [`entry_cost`] bytes to the domain that
//! last published it and to that domain's session.

use alloc::collections::BTreeMap;

use ankh_proto::ds::{
    ENTRIES_MAX, OWNER_BYTES_MAX, OWNER_ENTRIES_MAX, SESSION_BYTES_MAX, SESSION_ENTRIES_MAX,
    STORE_BYTES_MAX,
};
use ankh_proto::errno::{self, Errno};
use ankh_proto::Pid;

pub(crate) use ankh_proto::ds::entry_cost;

/// Keys and bytes charged to one owner, one session, or the whole store.
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

/// What one owner holds, and the session it is charged to.
struct OwnerCharge {
    usage: Usage,
    /// Fixed by the owner's first key and kept while it holds any, so that a key is
    /// given back to the session that was charged for it.
    session: Pid,
}

/// The charges of every owner and every session holding a key, and their sum.
#[derive(Default)]
pub(crate) struct Ledger {
    owners: BTreeMap<Pid, OwnerCharge>,
    sessions: BTreeMap<Pid, Usage>,
    total: Usage,
}

/// Takes a key of `cost` bytes off `key`'s usage in `map`, dropping the entry at zero.
fn remove_from(map: &mut BTreeMap<Pid, Usage>, key: Pid, cost: usize) {
    if let Some(usage) = map.get_mut(&key) {
        usage.remove(cost);
        if usage.entries == 0 {
            map.remove(&key);
        }
    }
}

impl Ledger {
    /// What `owner` is charged.
    pub(crate) fn of(&self, owner: Pid) -> Usage {
        self.owners
            .get(&owner)
            .map(|charge| charge.usage)
            .unwrap_or_default()
    }

    /// What session `session` is charged.
    pub(crate) fn of_session(&self, session: Pid) -> Usage {
        self.sessions.get(&session).copied().unwrap_or_default()
    }

    /// The whole store.
    pub(crate) fn total(&self) -> Usage {
        self.total
    }

    /// The session `owner`'s keys are charged to: the one recorded with its keys, or
    /// `joined` (the session it belongs to now) when it holds none.
    fn session_of(&self, owner: Pid, joined: Pid) -> Pid {
        self.owners
            .get(&owner)
            .map_or(joined, |charge| charge.session)
    }

    /// `ENOSPC` unless `owner` (of session `joined`) may take a key of `cost` bytes,
    /// after giving back one of `released` bytes (the key's old value) if any: within
    /// the store's, its session's and its own bounds.
    pub(crate) fn check(
        &self,
        owner: Pid,
        joined: Pid,
        cost: usize,
        released: Option<(Pid, usize)>,
    ) -> Result<(), Errno> {
        let session = self.session_of(owner, joined);
        let mut total = self.total;
        let mut ours = self.of_session(session);
        let mut mine = self.of(owner);
        if let Some((old_owner, old_cost)) = released {
            total.remove(old_cost);
            if self.session_of(old_owner, old_owner) == session {
                ours.remove(old_cost);
            }
            if old_owner == owner {
                mine.remove(old_cost);
            }
        }
        let fits = total.has_room(cost, ENTRIES_MAX, STORE_BYTES_MAX)
            && ours.has_room(cost, SESSION_ENTRIES_MAX, SESSION_BYTES_MAX)
            && mine.has_room(cost, OWNER_ENTRIES_MAX, OWNER_BYTES_MAX);
        if fits {
            Ok(())
        } else {
            Err(errno::ENOSPC)
        }
    }

    /// True when `owner` (of session `joined`) could take over a key of `cost` bytes
    /// within its own quota and its session's share (the store's total does not
    /// change: the key is already charged).
    pub(crate) fn may_inherit(&self, owner: Pid, joined: Pid, cost: usize) -> bool {
        let session = self.session_of(owner, joined);
        self.of(owner)
            .has_room(cost, OWNER_ENTRIES_MAX, OWNER_BYTES_MAX)
            && self
                .of_session(session)
                .has_room(cost, SESSION_ENTRIES_MAX, SESSION_BYTES_MAX)
    }

    /// Charges a key of `cost` bytes to `owner` and its session (`joined` when it
    /// holds no key yet).
    pub(crate) fn charge(&mut self, owner: Pid, joined: Pid, cost: usize) {
        let charge = self.owners.entry(owner).or_insert(OwnerCharge {
            usage: Usage::default(),
            session: joined,
        });
        charge.usage.add(cost);
        self.sessions.entry(charge.session).or_default().add(cost);
        self.total.add(cost);
    }

    /// Gives back a key of `cost` bytes that `owner` held, to it and its session.
    pub(crate) fn release(&mut self, owner: Pid, cost: usize) {
        if let Some(charge) = self.owners.get_mut(&owner) {
            charge.usage.remove(cost);
            let session = charge.session;
            if charge.usage.entries == 0 {
                self.owners.remove(&owner);
            }
            remove_from(&mut self.sessions, session, cost);
        }
        self.total.remove(cost);
    }
}
