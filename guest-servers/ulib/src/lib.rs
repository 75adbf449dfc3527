//! The user library of Ankh apps: the OS servers' calls as methods of [`Os`].
//!
//! ```ignore
//! ankh_guest_rt::entry!(main);
//! fn main(boot: &BootInfo) -> u32 {
//!     let mut os = ankh_ulib::Os::init(boot);
//!     let fd = os.open("/etc/motd", O_RDONLY)?;
//!     ...
//! }
//! ```
//!
//! Every call is one `sendrec` (one VM exit) to the server that owns it: the
//! call-graph peers named `pm`, `vfs`, `ds` and `mm` in the boot information; records
//! are `ankh_proto`'s, encoded with `zerocopy` and decoded with `ankh_proto::wire`.
//! - PM ([`pm`]): `spawn`, `wait`, `wait_any`, `getpid`, `getppid`, `kill`, `ps`;
//! - VFS ([`vfs`]): `open`, `close`, `read`, `write`, `pread`, `pwrite`, `lseek`, `stat`,
//!   `fstat`, `unlink`, `mkdir`, `rmdir`, `readdir`, `rename`, `truncate`, `dup`, `pipe`;
//! - DS ([`ds`]): `ds_publish`, `ds_retrieve`, `ds_delete`, `ds_list`, `ds_subscribe`;
//! - MM ([`mm`]): `brk`, `map`, `unmap`, `usage`;
//! - [`args`]: how a parent hands numbers (e.g. pipe descriptors) to a child it spawns,
//!   through DS, until PM delivers argv;
//! - [`Os::call`]: any opcode to any server, for tests that send malformed requests.
//!
//! Errors are errnos ([`Errno`]). Checks made here, without any call:
//! - a buffer outside the app's own RAM (`[IMAGE_BASE, boot.memory_size)`) is
//!   `EFAULT`: the VMM would stop the app for a descriptor naming memory it does not
//!   have, so the library answers like a kernel would instead (see [`mem`]);
//! - a read or write longer than `vfs::IO_MAX` is `EINVAL`;
//! - a request whose bulk data exceeds the 1 MiB a message carries is `EMSGSIZE`;
//! - a call to a server this domain has no peer for is `ENOSYS`.
//!
//! An app ends by returning from its main (the runtime's `Exit` hypercall; the VMM tells
//! PM, which reports the code to the parent's `wait`), or with [`exit`].
//!
//! The library is generic over its [`Channel`] so that host tests can script the
//! servers; in a guest the channel is the runtime's `Ipc` ([`System`]).
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod args;
mod channel;
pub mod ds;
pub mod mem;
pub mod mm;
pub mod num;
pub mod pm;
mod system;
pub mod vfs;

#[cfg(test)]
mod tests;

pub use ankh_proto::{errno, Errno, Pid};
pub use channel::Channel;
pub use system::{Os, Server, Servers};

/// A file descriptor.
pub type Fd = i32;

/// The library over the guest's IPC endpoint.
pub type System = Os<ankh_guest_rt::ipc::Ipc>;

impl System {
    /// Sets up IPC for this app (once per domain) and finds the servers in `boot`.
    ///
    /// # Panics
    ///
    /// If IPC was already set up in this domain.
    pub fn init(boot: &ankh_guest_rt::BootInfo) -> System {
        Os::new(ankh_guest_rt::ipc::Ipc::init(), boot)
    }
}

/// Ends the app now with exit code `code` (what returning `code` from main does).
pub fn exit(code: u32) -> ! {
    ankh_guest_rt::hypercall::exit(code)
}
