//! [`Os`]: the app's connection to the OS servers.

use alloc::vec::Vec;
use core::ops::Range;

use ankh_proto::errno::{EMSGSIZE, ENOSYS};
use ankh_proto::{wire, DomainId, Errno};
use virtio_seep::abi::boot::BootInfo;
use virtio_seep::abi::layout::IMAGE_BASE;
use virtio_seep::message::{BULK_MAX, INLINE_PAYLOAD_MAX};
use zerocopy::{FromBytes, Immutable, KnownLayout};

use crate::Channel;

/// The OS servers, by role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// The process manager (peer `pm`).
    Pm,
    /// The virtual file system (peer `vfs`).
    Vfs,
    /// The data store (peer `ds`).
    Ds,
    /// The memory manager (peer `mm`).
    Mm,
}

/// The domain ids of the servers this app may call (`None`: no call-graph edge).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Servers {
    /// Peer `pm`.
    pub pm: Option<DomainId>,
    /// Peer `vfs`.
    pub vfs: Option<DomainId>,
    /// Peer `ds`.
    pub ds: Option<DomainId>,
    /// Peer `mm`.
    pub mm: Option<DomainId>,
}

impl Servers {
    /// The peers named `pm`, `vfs`, `ds`, `mm` in `boot`.
    pub fn from_boot(boot: &BootInfo) -> Servers {
        Servers {
            pm: boot.peer("pm"),
            vfs: boot.peer("vfs"),
            ds: boot.peer("ds"),
            mm: boot.peer("mm"),
        }
    }

    /// The domain of `server`, if this app may call it.
    pub fn get(&self, server: Server) -> Option<DomainId> {
        match server {
            Server::Pm => self.pm,
            Server::Vfs => self.vfs,
            Server::Ds => self.ds,
            Server::Mm => self.mm,
        }
    }
}

/// The app's connection to the OS: a channel, where the servers are, and the app's own
/// RAM (for the `EFAULT` checks of [`crate::mem`]). The calls are in the modules
/// [`crate::pm`], [`crate::vfs`], [`crate::ds`] and [`crate::mm`].
#[derive(Debug)]
pub struct Os<C: Channel> {
    /// How requests travel.
    pub(crate) channel: C,
    /// Where the servers are.
    pub(crate) servers: Servers,
    /// The app's own memory: `[IMAGE_BASE, memory_size)`.
    pub(crate) ram: Range<u64>,
}

impl<C: Channel> Os<C> {
    /// The OS as seen by the domain described by `boot`, over `channel`.
    pub fn new(channel: C, boot: &BootInfo) -> Os<C> {
        Os::with_servers(
            channel,
            Servers::from_boot(boot),
            IMAGE_BASE..boot.memory_size,
        )
    }

    /// The OS over `channel` with explicit servers and RAM (tests).
    pub fn with_servers(channel: C, servers: Servers, ram: Range<u64>) -> Os<C> {
        Os {
            channel,
            servers,
            ram,
        }
    }

    /// The app's own memory, `[IMAGE_BASE, memory_size)`.
    pub fn ram(&self) -> Range<u64> {
        self.ram.clone()
    }

    /// The channel (tests inspect their fakes through it).
    pub fn channel(&mut self) -> &mut C {
        &mut self.channel
    }

    /// Sends any request to `server` and returns the reply's payload and bulk data.
    /// No checks beyond what the wire needs (`EMSGSIZE` for too much data, `ENOSYS`
    /// without such a peer): for tests that send malformed requests. `opcode` must
    /// expect a reply (the runtime waits for one).
    pub fn call(
        &mut self,
        server: Server,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<(Vec<u8>, Vec<u8>), Errno> {
        self.request(server, opcode, payload, bulk, |payload, bulk| {
            (payload.to_vec(), bulk.to_vec())
        })
    }

    /// Sends a request to `server` and hands the reply to `reply`.
    pub(crate) fn request<R>(
        &mut self,
        server: Server,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
        reply: impl FnOnce(&[u8], &[u8]) -> R,
    ) -> Result<R, Errno> {
        let to = self.servers.get(server).ok_or(ENOSYS)?;
        if payload.len() > INLINE_PAYLOAD_MAX || bulk.len() > BULK_MAX as usize {
            return Err(EMSGSIZE);
        }
        self.channel.call(to, opcode, payload, bulk, reply)
    }

    /// A request whose reply payload is the record `T`.
    pub(crate) fn request_record<T: FromBytes + KnownLayout + Immutable>(
        &mut self,
        server: Server,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<T, Errno> {
        self.request(server, opcode, payload, bulk, |payload, _| {
            wire::record::<T>(payload)
        })?
    }

    /// A request whose reply carries nothing of interest.
    pub(crate) fn request_unit(
        &mut self,
        server: Server,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<(), Errno> {
        self.request(server, opcode, payload, bulk, |_, _| ())
    }
}

/// A NUL-terminated list of `items` (paths, keys, argv) for bulk data.
pub(crate) fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    wire::join(items)
}

/// The strings of a NUL-terminated list, owned (`EINVAL` when malformed).
pub(crate) fn strings(bulk: &[u8]) -> Result<Vec<alloc::string::String>, Errno> {
    Ok(wire::split(bulk)?
        .into_iter()
        .map(alloc::string::String::from)
        .collect())
}
