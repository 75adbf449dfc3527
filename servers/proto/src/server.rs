//! The interface of a server, independent of what runs it.

use alloc::vec::Vec;

use crate::{DomainId, Errno};

/// The servers a server may call, by role (the substrate maps them to domain ids).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// The process manager.
    Pm,
    /// The virtual file system.
    Vfs,
    /// The data store.
    Ds,
    /// The memory manager.
    Mm,
    /// The block-device driver.
    Blk,
    /// The VMM itself (kernel calls).
    Kernel,
}

/// A request as a server sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The true sender (stamped by the VMM): for an app, its pid.
    pub source: DomainId,
    /// What it asks (`virtio_seep::opcode`).
    pub opcode: u16,
    /// The id to answer it by (0 for a one-way message).
    pub request_id: u64,
    /// Inline payload.
    pub payload: &'a [u8],
    /// Bulk data.
    pub bulk: &'a [u8],
}

/// A reply's content.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reply {
    /// 0 or an errno.
    pub status: Errno,
    /// Inline payload (at most 224 bytes).
    pub payload: Vec<u8>,
    /// Bulk data (at most 1 MiB).
    pub bulk: Vec<u8>,
}

impl Reply {
    /// A successful reply with a payload.
    pub fn ok(payload: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status: 0,
            payload: payload.into(),
            bulk: Vec::new(),
        }
    }

    /// A successful reply with a payload and bulk data.
    pub fn ok_with_bulk(payload: impl Into<Vec<u8>>, bulk: Vec<u8>) -> Reply {
        Reply {
            status: 0,
            payload: payload.into(),
            bulk,
        }
    }

    /// An error reply.
    pub fn err(status: Errno) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }
}

/// What a server did with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Handled {
    /// Answer it now.
    Reply(Reply),
    /// The server parked it and will answer later with [`Kernel::reply`] (or it was a
    /// one-way message that needs no answer).
    Deferred,
}

impl From<Reply> for Handled {
    fn from(reply: Reply) -> Handled {
        Handled::Reply(reply)
    }
}

impl From<Result<Reply, Errno>> for Handled {
    fn from(result: Result<Reply, Errno>) -> Handled {
        Handled::Reply(result.unwrap_or_else(Reply::err))
    }
}

/// What a server may do besides answering the request in hand.
pub trait Kernel {
    /// Calls another server and waits for its reply (`sendrec`).
    fn call(
        &mut self,
        to: Endpoint,
        opcode: u16,
        payload: &[u8],
        bulk: &[u8],
    ) -> Result<Reply, Errno>;

    /// Answers a request parked earlier.
    fn reply(&mut self, request_id: u64, reply: Reply);
}

/// How many times a call answered `ERESTART` is sent again: by [`call_retrying`], by
/// VFS to its block driver, and by the programs (72 attempts in all). More than the 64
/// kills `ankh ctl` lets wait to strike: with fewer, a kill storm's queued kills
/// answered every attempt, and a recovering system lost work it was told of (PM's
/// notice of a process's end, after 4 attempts, left its descriptors open in VFS) or
/// gave up on it (init, after 8, ended with 127). A fault of the callee's own that the
/// same request meets again and again does not wait for this bound: recovery
/// escalates after three (docs/recovery.md, "When a server faults").
pub const RESTART_RETRIES: u32 = 71;

/// Calls `to` and turns an error status in the reply into an error, so that no
/// caller can take an error reply for an empty answer.
pub fn call_checked(
    kernel: &mut dyn Kernel,
    to: Endpoint,
    opcode: u16,
    payload: &[u8],
    bulk: &[u8],
) -> Result<Reply, Errno> {
    let reply = kernel.call(to, opcode, payload, bulk)?;
    match reply.status {
        0 => Ok(reply),
        status => Err(status),
    }
}

/// [`call_checked`], sent again (up to [`RESTART_RETRIES`] more times) while it ends
/// in `ERESTART`: the callee was rolled back to before the request, which it did not
/// carry out, so sending it again is safe. For notices a server must not lose (a
/// process ended: free what it held) and for publications.
pub fn call_retrying(
    kernel: &mut dyn Kernel,
    to: Endpoint,
    opcode: u16,
    payload: &[u8],
    bulk: &[u8],
) -> Result<Reply, Errno> {
    let mut retries = 0;
    loop {
        match call_checked(kernel, to, opcode, payload, bulk) {
            Err(crate::errno::ERESTART) if retries < RESTART_RETRIES => retries += 1,
            result => return result,
        }
    }
}

/// A server: a state machine over requests.
pub trait Server {
    /// Called once before the first request (e.g. VFS loads the root file system).
    fn start(&mut self, _kernel: &mut dyn Kernel) {}

    /// Handles one request.
    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled;
}

/// A boxed server is the server (a guest keeps its server on the heap and the loop's
/// per-request state in the frames above the loop).
impl<S: Server + ?Sized> Server for alloc::boxed::Box<S> {
    fn start(&mut self, kernel: &mut dyn Kernel) {
        (**self).start(kernel);
    }

    fn handle(&mut self, request: &Request<'_>, kernel: &mut dyn Kernel) -> Handled {
        (**self).handle(request, kernel)
    }
}
