//! Runtime of the Ankh guest images.
//!
//! An image is a `#![no_std]`, `#![no_main]` binary that names its main function with
//! [`entry!`]. The runtime provides everything around it:
//! - the entry point `_start` (module `start`): stack, heap, call of the image's main,
//!   [`hypercall::exit`] with its return value;
//! - [`exceptions`]: the stubs through which any CPU exception is reported to the VMM,
//!   and the ABI note that tells the VMM where they are;
//! - [`hypercall`]: the calls of `virtio_seep::abi::hypercall`;
//! - [`ipc`]: messages to and from other domains over the domain's virtio queue pair
//!   ([`ipc::Ipc`]: `send`, `sendrec`, `receive`, `reply`, `reply_recv`);
//! - [`console`]: line output, with its own integer formatting ([`num`]), because the
//!   precompiled `core::fmt` contains SSE instructions that KVM cannot run here;
//! - [`heap`]: the global allocator over the RAM above the image, so images can use
//!   `alloc` (`Vec`, `BTreeMap`, ...); out of memory is a panic;
//! - the panic handler (module `panic`), which reports file, line and static message;
//! - `memcpy` and friends (module `mem`), which a freestanding link needs.
//!
//! Guest code must use no floats and no `core::fmt` formatting (see `docs/host.md` and
//! `guest-servers/README.md`); `images/tests/simd_free.rs` checks the built images.
//!
//! Under `cfg(test)` the crate is an ordinary `std` library so that the pure logic
//! (formatting, line buffering, the IPC ring driver against a fake device) can be
//! tested on the host.
//!
//! What only a freestanding image may contain (the panic handler, the global
//! allocator, `_start`, `memcpy` and friends) is compiled only under
//! `all(not(test), panic = "abort")`: images are built with `panic = "abort"`, while
//! cargo builds every dependency of a host test harness with `panic = "unwind"`. So a
//! host test of another crate (ulib, apps) may link this crate, and `cargo clippy
//! --all-targets` checks the images and the host tests in one go, with no feature
//! that takes items away. Host tests run with
//! `RUSTFLAGS= cargo test` in `guest-servers/` (the guests' SSE-free flags cannot build
//! `std` test binaries), or `cargo test -p ankh-images` at the root.
#![cfg_attr(not(test), no_std)]

pub mod console;
pub mod declared;
pub mod exceptions;
pub mod heap;
pub mod hypercall;
pub mod ipc;
pub mod num;

// Freestanding images only (see the crate docs).
#[cfg(all(not(test), panic = "abort"))]
mod mem;
#[cfg(all(not(test), panic = "abort"))]
mod panic;
#[cfg(not(test))]
mod process_call;
#[cfg(all(not(test), panic = "abort"))]
mod start;

pub use virtio_seep::abi::boot::BootInfo;

/// Names the image's main function: `ankh_guest_rt::entry!(main);` with
/// `fn main(boot: &BootInfo) -> u32`.
///
/// The runtime calls it once, after boot, with the boot information the VMM wrote; its
/// return value becomes the domain's exit code (the [`hypercall::exit`] hypercall).
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        /// The image's main function as the runtime calls it (see `ankh_guest_rt::entry!`).
        #[no_mangle]
        pub fn __ankh_guest_main(boot: &$crate::BootInfo) -> u32 {
            let main: fn(&$crate::BootInfo) -> u32 = $main;
            main(boot)
        }
    };
}
