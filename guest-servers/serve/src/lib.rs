//! Runs any [`ankh_proto::server::Server`] in a domain.
//!
//! ```ignore
//! ankh_guest_rt::entry!(main);
//! fn main(boot: &BootInfo) -> u32 {
//!     ankh_serve::run(boot, ankh_ds::DataStore::new())
//! }
//! ```
//!
//! - [`Peers`] maps the server interface's [`Endpoint`](ankh_proto::server::Endpoint)s to
//!   domain ids: `Pm`, `Vfs`, `Ds`, `Mm` are the call-graph peers named `pm`, `vfs`,
//!   `ds`, `mm` in the boot information; `Kernel` is domain 0 (`VMM_DOMAIN`), to which
//!   servers address the `SYS_*` kernel calls.
//! - [`Serving`] is the server loop: `server.start(kernel)` once, then for each message
//!   `handle` and, for a request answered at once ([`Handled::Reply`]), `reply_recv` (one
//!   VM exit per request); after [`Handled::Deferred`] or a one-way message, `receive`.
//!   The request is copied out of the RX buffers ([`Message`]) before `handle` runs,
//!   because `handle` may call other servers through the same endpoint.
//! - [`Port`] is what the loop needs from IPC; the guest's `ankh_guest_rt::ipc::Ipc`
//!   implements it (module `ipc_port`), host tests use a fake.
//!
//! What the loop does with a server's mistakes (a server bug must not take the domain
//! down by tripping the runtime's own checks): a reply whose payload or bulk data is too
//! large for a message is sent as an `EMSGSIZE` error instead; a call to an endpoint the
//! domain has no peer for fails with `ENOSYS`, one with an oversized message with
//! `EMSGSIZE`, one with an opcode the registry does not know with `ENOSYS`.
//!
//! [`Handled::Reply`]: ankh_proto::server::Handled::Reply
//! [`Handled::Deferred`]: ankh_proto::server::Handled::Deferred
#![cfg_attr(not(test), no_std)]

extern crate alloc;

mod kernel;
mod message;
mod peers;
mod port;
mod serving;

#[cfg(not(test))]
mod ipc_port;

#[cfg(test)]
mod tests;

pub use kernel::PortKernel;
pub use message::Message;
pub use peers::Peers;
pub use port::Port;
pub use serving::Serving;

/// Serves `server` in this domain for good: sets up IPC, calls `start`, then answers
/// messages forever (the domain ends only when the VMM stops it).
///
/// # Panics
///
/// If IPC was already set up in this domain (`Ipc::init` runs once).
#[cfg(not(test))]
pub fn run<S: ankh_proto::server::Server>(boot: &ankh_guest_rt::BootInfo, server: S) -> ! {
    serve_forever(started(boot, server))
}

/// The loop's state, started (`Server::start` may mount a file system, with large
/// locals) in a frame of its own: the stack above the loop stays small. The server
/// goes on the heap; the rest (the IPC drivers, the message received last) is written
/// by every request and is returned into the frames above the loop, which lie in the
/// hot page with the IPC rings (see the runtime's `guest.ld`): a request then writes
/// no heap page just to be received and answered.
#[cfg(not(test))]
#[inline(never)]
fn started<S: ankh_proto::server::Server>(
    boot: &ankh_guest_rt::BootInfo,
    server: S,
) -> Serving<ankh_guest_rt::ipc::Ipc, alloc::boxed::Box<S>> {
    let ipc = ankh_guest_rt::ipc::Ipc::init();
    let mut serving = Serving::new(ipc, Peers::from_boot(boot), alloc::boxed::Box::new(server));
    serving.start();
    // What the start allocated lives on: the small blocks are for the requests'.
    ankh_guest_rt::heap::open_small_blocks();
    serving
}

/// Answers messages forever.
#[cfg(not(test))]
#[inline(never)]
fn serve_forever<S: ankh_proto::server::Server>(
    mut serving: Serving<ankh_guest_rt::ipc::Ipc, alloc::boxed::Box<S>>,
) -> ! {
    loop {
        serving.step();
    }
}
