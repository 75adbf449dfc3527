//! Data store calls (DS). Keys and values are strings without NUL bytes.

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::opcode::{DS_DELETE, DS_LIST, DS_PUBLISH, DS_RETRIEVE, DS_SUBSCRIBE};
use ankh_proto::Errno;

use crate::system::{list, strings};
use crate::vfs::first_string;
use crate::{Channel, Os, Server};

impl<C: Channel> Os<C> {
    /// Sets `key` to `value` (wakes the subscribers of any prefix of `key`).
    pub fn ds_publish(&mut self, key: &str, value: &str) -> Result<(), Errno> {
        self.request_unit(Server::Ds, DS_PUBLISH, &[], &list([key, value]))
    }

    /// The value of `key` (`ENOENT` when unset).
    pub fn ds_retrieve(&mut self, key: &str) -> Result<String, Errno> {
        self.request(Server::Ds, DS_RETRIEVE, &[], &list([key]), |_, bulk| {
            first_string(bulk)
        })?
    }

    /// Removes `key`.
    pub fn ds_delete(&mut self, key: &str) -> Result<(), Errno> {
        self.request_unit(Server::Ds, DS_DELETE, &[], &list([key]))
    }

    /// The keys that start with `prefix`.
    pub fn ds_list(&mut self, prefix: &str) -> Result<Vec<String>, Errno> {
        self.request(Server::Ds, DS_LIST, &[], &list([prefix]), |_, bulk| {
            strings(bulk)
        })?
    }

    /// Waits until a key starting with `prefix` is published or deleted; returns that
    /// key.
    pub fn ds_subscribe(&mut self, prefix: &str) -> Result<String, Errno> {
        self.request(Server::Ds, DS_SUBSCRIBE, &[], &list([prefix]), |_, bulk| {
            first_string(bulk)
        })?
    }
}
