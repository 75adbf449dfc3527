//! Ankh's data store (DS): a key-value store that servers publish their state to
//! (e.g. `vfs.open-files`, when VFS is configured to) and anyone may read, list or
//! wait on.
//!
//! - [`DataStore`]: the server ([`ankh_proto::server::Server`]);
//! - `keys`: parsing and bounds of keys, prefixes and values;
//! - `subscriptions`: parked `DS_SUBSCRIBE` requests, each answered once.
//!
//! The protocol is in [`ankh_proto::ds`]. DS calls no other server: the only thing it
//! does besides answering the request in hand is answering parked subscriptions.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod keys;
mod subscriptions;
#[cfg(test)]
mod tests;

use alloc::borrow::ToOwned;
use alloc::collections::BTreeMap;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::ops::Bound;

use ankh_proto::ds::ENTRIES_MAX;
use ankh_proto::errno::{self, Errno};
use ankh_proto::opcode::{DS_DELETE, DS_LIST, DS_PUBLISH, DS_RETRIEVE, DS_SUBSCRIBE};
use ankh_proto::server::{Handled, Kernel, Reply, Request, Server};
use ankh_proto::{wire, Pid};

use subscriptions::Subscriptions;

/// The data store: keys (1..=`KEY_MAX` bytes) mapped to values (at most `VALUE_MAX`
/// bytes), at most `ENTRIES_MAX` of them, plus at most `SUBSCRIPTIONS_MAX` parked
/// subscriptions.
///
/// Anyone may publish or delete any key: the protocol has no key ownership.
#[derive(Default)]
pub struct DataStore {
    entries: BTreeMap<String, String>,
    subscriptions: Subscriptions,
}

impl DataStore {
    /// An empty store.
    pub fn new() -> DataStore {
        DataStore::default()
    }

    /// The value of `key`, if it is published.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries.get(key).map(String::as_str)
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
    /// returns how many there were.
    ///
    /// Nothing in the protocol calls this: PM tells VFS and MM when a process ends,
    /// not DS. A subscription left behind by a dead process is harmless: it counts
    /// against `SUBSCRIPTIONS_MAX` until it fires, and when it fires the VMM drops the
    /// reply to the stopped domain. A substrate that learns of process exits may call
    /// this to free the slots early. The subscriptions are answered rather than
    /// forgotten so that the VMM, which tracks every request until its callee
    /// answers it, can forget them too.
    pub fn drop_process(&mut self, pid: Pid, kernel: &mut dyn Kernel) -> usize {
        self.subscriptions.drop_source(pid, kernel)
    }

    /// `DS_PUBLISH` (`key\0value\0`): sets the key, then answers the subscriptions
    /// whose prefix it matches.
    fn publish(&mut self, bulk: &[u8], kernel: &mut dyn Kernel) -> Result<Reply, Errno> {
        let (key, value) = keys::publication(bulk)?;
        let full = self.entries.len() >= ENTRIES_MAX;
        match self.entries.get_mut(key) {
            Some(old) => value.clone_into(old),
            None if full => return Err(errno::ENOSPC),
            None => {
                self.entries.insert(key.to_string(), value.to_string());
            }
        }
        self.subscriptions.fire(key, kernel);
        Ok(Reply::ok(Vec::new()))
    }

    /// `DS_RETRIEVE` (`key\0`): the value as `value\0`.
    fn retrieve(&self, bulk: &[u8]) -> Result<Reply, Errno> {
        let key = keys::key(wire::single(bulk)?)?;
        let value = self.entries.get(key).ok_or(errno::ENOENT)?;
        Ok(Reply::ok_with_bulk(
            Vec::new(),
            wire::join([value.as_str()]),
        ))
    }

    /// `DS_DELETE` (`key\0`): removes the key, then answers the subscriptions whose
    /// prefix it matches.
    fn delete(&mut self, bulk: &[u8], kernel: &mut dyn Kernel) -> Result<Reply, Errno> {
        let key = keys::key(wire::single(bulk)?)?;
        self.entries.remove(key).ok_or(errno::ENOENT)?;
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
        self.subscriptions
            .park(request.source, request.request_id, prefix)
    }
}

impl Server for DataStore {
    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        match request.opcode {
            DS_PUBLISH => self.publish(request.bulk, kernel).into(),
            DS_RETRIEVE => self.retrieve(request.bulk).into(),
            DS_DELETE => self.delete(request.bulk, kernel).into(),
            DS_LIST => self.list(request.bulk).into(),
            DS_SUBSCRIBE => match self.subscribe(request) {
                Ok(()) => Handled::Deferred,
                Err(status) => Reply::err(status).into(),
            },
            _ => Reply::err(errno::ENOSYS).into(),
        }
    }
}
