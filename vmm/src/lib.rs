//! The Ankh VMM: runs each component of a multi-server OS in its own tiny KVM guest.
//!
//! Table of contents:
//! - [`kvm_host`]: opening /dev/kvm once, with a clear error when it is unusable;
//! - [`memory`]: a domain's guest RAM and bounds-checked access to it;
//! - [`image`]: validating and loading guest ELF images (ABI version check);
//! - [`x86_boot`]: GDT, TSS, page tables, boot info and registers for 64-bit entry;
//! - [`domain`]: one guest VM, its run loop, and its lifecycle;
//! - [`checkpoint`]: a domain's memory and vCPU at a request boundary, and rollback;
//! - [`dirty_log`]: the pages a guest wrote, with hot pages left writable;
//! - [`hypercall`]: serving the guest's hypercalls, validating every argument;
//! - [`ipc`]: messages between domains: queues, validation, the router;
//! - [`devices`]: devices emulated for domains (a virtio-blk disk over MMIO);
//! - [`virtq`]: the validated device side of a split virtqueue, for IPC and devices;
//! - [`disk_image`]: the host file behind a system's disk (persistent or temporary);
//! - [`system`]: all domains of a system description, run and scheduled together;
//! - [`fault`]: how a domain stops: a clean exit or a typed [`fault::DomainFault`];
//! - [`console`]: guest output as sanitized lines prefixed with the domain's name;
//! - [`watchdog`]: stopping a guest that runs too long without exiting;
//! - [`written_pages`]: the pages the VMM itself wrote into a domain;
//! - [`bench`]: benchmarks behind `ankh bench` (never pass/fail tests).
//! - [`campaign`]: fault-injection campaigns (`ankh campaign`): plans, runs, reports;
//! - [`chart`]: stacked and grouped bar charts as SVG (`plotters`), for the reports;
//! - [`tsc`]: the CPU's time-stamp counter, a clock read cheap enough for every exit;
//!
//! `unsafe` lives only where KVM, guest memory or raw host calls are touched, each block
//! with a `// SAFETY:` comment: [`domain`] (registering the memory slot, reading KVM's
//! emulation-failure data), [`dirty_log`] (mapping and reading KVM's dirty ring),
//! [`watchdog`] (signalling the vCPU thread), the disk backend
//! (`devices::blk::backend`: reads and writes between the file and guest memory) and
//! [`bench`] (pinning to a CPU, `sysconf`) and [`tsc`] (reading the counter).

pub mod bench;
pub mod campaign;
pub mod chart;
pub mod checkpoint;
pub mod console;
pub mod devices;
pub mod dirty_log;
pub mod disk_image;
pub mod domain;
pub mod fault;
pub mod hypercall;
pub mod image;
pub mod ipc;
pub mod kvm_host;
pub mod memory;
pub mod system;
pub mod tsc;
pub mod virtq;
pub mod watchdog;
pub mod written_pages;
pub mod x86_boot;

pub use domain::{Domain, DomainConfig, DomainError, DomainState, RunEvent};
pub use fault::{DomainExit, DomainFault};
pub use image::{GuestImage, ImageError};
pub use kvm_host::{KvmHost, KvmHostError};
pub use x86_boot::GuestMode;

/// Whether an I/O error on a path a person gave is theirs to fix (the path is
/// missing, a directory, under something that is not a directory, or not theirs to
/// use) rather than a failing host.
pub(crate) fn io_is_usage(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::NotFound
            | ErrorKind::IsADirectory
            | ErrorKind::NotADirectory
            | ErrorKind::PermissionDenied
            | ErrorKind::ReadOnlyFilesystem
    )
}

/// Installs the built guest images for the unit tests that read them through
/// `ankh_image_catalog` (the `ankh` binary and the integration tests install them
/// themselves; this library never depends on the crate that builds them).
#[cfg(test)]
pub(crate) fn install_test_images() {
    ankh_images::install();
}
