//! Ankh's data store (DS): a key-value store that servers publish their state to
//! (e.g. `vfs.open-files`, when VFS is configured to) and anyone may read, list or
//! wait on.
//!
//! - [`DataStore`]: the server ([`ankh_proto::server::Server`]);
//! - `keys`: parsing and bounds of keys, prefixes and values;
//! - `subscriptions`: parked `DS_SUBSCRIBE` requests, each answered once;
//! - `quota`: what each owner (the domain that last published a key) and each
//!   session is charged;
//! - `sessions`: which session each process belongs to (`DS_PROC_SPAWN`).
//!
//! The protocol and its bounds are in [`ankh_proto::ds`]. DS calls no other server:
//! the only thing it does besides answering the request in hand is answering parked
//! subscriptions. The bounds keep DS's data well inside its heap, so no client can
//! make DS run out of memory: a publish over them is `ENOSPC`. Besides the owner's
//! quota, a key is charged to the owner's *session* (a program init started and
//! every process it spawned, directly or not), which has a share of the store, so one
//! program's helpers cannot fill it together.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod keys;
mod quota;
mod sessions;
mod subscriptions;
#[cfg(test)]
mod tests;

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Bound;

use ankh_proto::ds::OwnerExit;
use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{
    DS_DELETE, DS_LIST, DS_PROC_EXIT, DS_PROC_SPAWN, DS_PUBLISH, DS_RETRIEVE, DS_SUBSCRIBE,
};
use ankh_proto::server::{Handled, Kernel, Reply, Request, Server};
use ankh_proto::vfs::ProcSpawn;
use ankh_proto::{wire, Pid};

pub use quota::Usage;
use quota::{entry_cost, Ledger};
use sessions::Sessions;
use subscriptions::Subscriptions;

/// A published value and who is charged for it.
struct Entry {
    value: String,
    /// The domain that last published it (or inherited it, see `DS_PROC_EXIT`).
    owner: Pid,
}

/// The data store: keys (1..=`KEY_MAX` bytes) mapped to values (at most `VALUE_MAX`
/// bytes), within the store's, each session's and each owner's bounds
/// ([`ankh_proto::ds`]), plus parked subscriptions.
///
/// Anyone may publish or delete any key: ownership only says whose quota (and whose
/// session's share) a key uses. Publishing an existing key makes the publisher its
/// owner.
#[derive(Default)]
pub struct DataStore {
    entries: BTreeMap<String, Entry>,
    ledger: Ledger,
    sessions: Sessions,
    subscriptions: Subscriptions,
    process_manager: Option<Pid>,
}

impl DataStore {
    /// An empty store.
    pub fn new() -> DataStore {
        DataStore::default()
    }

    /// The value of `key`, if it is published.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(|entry| entry.value.as_str())
    }

    /// Who is charged for `key`, if it is published.
    pub fn owner(&self, key: &str) -> Option<Pid> {
        self.entries.get(key).map(|entry| entry.owner)
    }

    /// Accepts `DS_PROC_SPAWN` and `DS_PROC_EXIT` only from domain `pm` (others get
    /// `EPERM`). Without it they are accepted from any source that does not name
    /// itself: the router already refuses them from anyone but PM, and DS does not
    /// call PM, so it has no peer entry to learn PM's id from.
    pub fn with_process_manager(mut self, pm: Pid) -> DataStore {
        self.process_manager = Some(pm);
        self
    }

    /// What `owner` is charged.
    pub fn usage(&self, owner: Pid) -> Usage {
        self.ledger.of(owner)
    }

    /// What the session of process `pid` is charged.
    pub fn session_usage(&self, pid: Pid) -> Usage {
        self.ledger.of_session(self.session_of(pid))
    }

    /// The session `pid`'s keys are charged to.
    fn session_of(&self, pid: Pid) -> Pid {
        self.sessions.of(pid)
    }

    /// Number of processes DS knows the session of (at most `pm::PROC_MAX`).
    pub fn known_processes(&self) -> usize {
        self.sessions.len()
    }

    /// What the whole store is charged.
    pub fn total_usage(&self) -> Usage {
        self.ledger.total()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no key is published.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Number of parked subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.subscriptions.len()
    }

    /// Ends the parked subscriptions of process `pid`, answering each with `ESRCH`;
    /// returns how many there were. (Answered rather than forgotten so that the VMM,
    /// which tracks every request until its callee answers it, can forget them too.)
    pub fn drop_process(&mut self, pid: Pid, kernel: &mut dyn Kernel) -> usize {
        self.subscriptions.drop_source(pid, kernel)
    }

    /// `DS_PROC_SPAWN` (`ProcSpawn`, from PM, before the child runs): the child joins
    /// its parent's session, or starts one when DS never saw the parent spawned (a
    /// program init started). `EPERM` when the sender names itself as the child (PM
    /// never does), `EINVAL` for a malformed record or a child that is its own
    /// parent, `EEXIST` when the child holds keys (a process that runs already keeps
    /// the session it is charged to), `EAGAIN` when DS knows `pm::PROC_MAX`
    /// processes already.
    fn proc_spawn(&mut self, source: Pid, payload: &[u8]) -> Result<Reply, Errno> {
        ankh_proto::pm::check_manager(self.process_manager, source)?;
        let ProcSpawn { child, parent, .. } = wire::record(payload)?;
        if child == source {
            return Err(errno::EPERM);
        }
        if child == parent || child == 0 {
            return Err(errno::EINVAL);
        }
        if self.ledger.of(child).entries > 0 {
            return Err(errno::EEXIST);
        }
        self.sessions.join(child, parent)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// `DS_PROC_EXIT` (`OwnerExit`, from PM): process `pid` ended. Its subscriptions
    /// are answered `ESRCH`; its keys pass to `heir`, in key order, as far as the
    /// heir's quota and its session's share allow (a heir in the same session takes
    /// them within the share they were charged to), and the rest are deleted (firing
    /// their subscriptions, as `DS_DELETE` does); DS forgets `pid`'s session. Values
    /// outlive their publisher (a child may leave a result for its parent), but never
    /// beyond a live owner's quota, so exiting children cannot pile up keys nobody is
    /// charged for. `EPERM` when the sender names itself (PM reports a process's end
    /// after its domain stopped, so never its own).
    fn proc_exit(
        &mut self,
        source: Pid,
        payload: &[u8],
        kernel: &mut dyn Kernel,
    ) -> Result<Reply, Errno> {
        ankh_proto::pm::check_manager(self.process_manager, source)?;
        let OwnerExit { pid, heir } = wire::record(payload)?;
        if pid == source {
            return Err(errno::EPERM);
        }
        self.drop_process(pid, kernel);
        let heir_session = self.session_of(heir);
        let owned: Vec<(String, usize)> = self
            .entries
            .iter()
            .filter(|(_, entry)| entry.owner == pid)
            .map(|(key, entry)| (key.clone(), entry_cost(key.len(), entry.value.len())))
            .collect();
        for (key, cost) in owned {
            self.ledger.release(pid, cost);
            if heir != 0 && heir != pid && self.ledger.may_inherit(heir, heir_session, cost) {
                self.ledger.charge(heir, heir_session, cost);
                if let Some(entry) = self.entries.get_mut(&key) {
                    entry.owner = heir;
                }
            } else {
                self.entries.remove(&key);
                self.subscriptions.fire(&key, kernel);
            }
        }
        self.sessions.leave(pid);
        Ok(Reply::ok(Vec::new()))
    }

    /// `DS_PUBLISH` (`key\0value\0`) from `owner`: sets the key and charges it to
    /// `owner` and its session, then answers the subscriptions whose prefix it
    /// matches. `ENOSPC` when the store, the session or `owner` would go over its
    /// bounds.
    fn publish(
        &mut self,
        owner: Pid,
        bulk: &[u8],
        kernel: &mut dyn Kernel,
    ) -> Result<Reply, Errno> {
        let (key, value) = keys::publication(bulk)?;
        let cost = entry_cost(key.len(), value.len());
        let old = self
            .entries
            .get(key)
            .map(|entry| (entry.owner, entry_cost(key.len(), entry.value.len())));
        let session = self.session_of(owner);
        self.ledger.check(owner, session, cost, old)?;
        if let Some((old_owner, old_cost)) = old {
            self.ledger.release(old_owner, old_cost);
        }
        self.ledger.charge(owner, session, cost);
        match self.entries.get_mut(key) {
            Some(entry) => {
                value.clone_into(&mut entry.value);
                entry.owner = owner;
            }
            None => {
                let entry = Entry {
                    value: value.to_string(),
                    owner,
                };
                self.entries.insert(key.to_string(), entry);
            }
        }
        self.subscriptions.fire(key, kernel);
        Ok(Reply::ok(Vec::new()))
    }

    /// `DS_RETRIEVE` (`key\0`): the value as `value\0`.
    fn retrieve(&self, bulk: &[u8]) -> Result<Reply, Errno> {
        let key = keys::key(wire::single(bulk)?)?;
        let entry = self.entries.get(key).ok_or(errno::ENOENT)?;
        Ok(Reply::ok_with_bulk(
            Vec::new(),
            wire::join([entry.value.as_str()]),
        ))
    }

    /// `DS_DELETE` (`key\0`): removes the key, then answers the subscriptions whose
    /// prefix it matches.
    fn delete(&mut self, bulk: &[u8], kernel: &mut dyn Kernel) -> Result<Reply, Errno> {
        let key = keys::key(wire::single(bulk)?)?;
        let entry = self.entries.remove(key).ok_or(errno::ENOENT)?;
        self.ledger
            .release(entry.owner, entry_cost(key.len(), entry.value.len()));
        self.subscriptions.fire(key, kernel);
        Ok(Reply::ok(Vec::new()))
    }

    /// `DS_LIST` (`prefix\0`): the keys that start with the prefix, sorted, as a list.
    fn list(&self, bulk: &[u8]) -> Result<Reply, Errno> {
        let prefix = keys::prefix(wire::single(bulk)?)?;
        let keys = self
            .entries
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .map(|(key, _)| key.as_str())
            .take_while(|key| key.starts_with(prefix));
        Ok(Reply::ok_with_bulk(Vec::new(), wire::join(keys)))
    }

    /// `DS_SUBSCRIBE` (`prefix\0`): parks the request until a key with the prefix is
    /// published or deleted.
    fn subscribe(&mut self, request: &Request<'_>) -> Result<(), Errno> {
        let prefix = keys::prefix(wire::single(request.bulk)?)?;
        if request.request_id == 0 {
            // A one-way message cannot be answered later.
            return Err(errno::EINVAL);
        }
        let session = self.session_of(request.source);
        self.subscriptions
            .park(request.source, session, request.request_id, prefix)
    }
}

impl Server for DataStore {
    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        match request.opcode {
            DS_PUBLISH => self.publish(request.source, request.bulk, kernel).into(),
            DS_RETRIEVE => self.retrieve(request.bulk).into(),
            DS_DELETE => self.delete(request.bulk, kernel).into(),
            DS_LIST => self.list(request.bulk).into(),
            DS_SUBSCRIBE => match self.subscribe(request) {
                Ok(()) => Handled::Deferred,
                Err(status) => Reply::err(status).into(),
            },
            DS_PROC_SPAWN => self.proc_spawn(request.source, request.payload).into(),
            DS_PROC_EXIT => self
                .proc_exit(request.source, request.payload, kernel)
                .into(),
            _ => Reply::err(errno::ENOSYS).into(),
        }
    }
}
