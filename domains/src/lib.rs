//! The system description of an Ankh system: which domains exist, the image each one
//! boots, its memory, the host thread that runs it, its privilege mode, the call graph
//! (who may send requests to whom) and the recovery policy of each domain.
//!
//! It is read from a TOML file ([`SystemDescription::from_path`],
//! [`SystemDescription::from_toml_str`]; `ankh up` embeds `systems/os.toml`) or built
//! in code ([`SystemDescription::builder`]), and validated the same way each time
//! with one-line errors ([`DescriptionError`]). It is pure data and validation: it
//! never touches KVM, guest memory or threads, and reads no file but the one
//! `from_path` is given (images are checked through a callback).
//!
//! Modules: [`spec`] (a domain and the system settings), [`error`] (why a description
//! is rejected), and, private, `parse` (TOML), `validate` (the rules) and `graph` (the
//! resolved call graph).
//!
//! # The TOML format
//!
//! Every key but `name` is optional; unknown keys are errors. A full example:
//!
#![doc = concat!("```toml\n", include_str!("../example.toml"), "```")]
//!
//! # Rules
//!
//! - `threads` is 1..=64; `message_rate.per_second` and `message_rate.burst` are at
//!   least 1.
//! - There are 1..=255 domains. Domain ids are 1-based in table order; 0 is the VMM.
//! - Names are unique, 1..=16 bytes of `a-z`, `0-9` and `-`, and do not start with `-`
//!   (16 bytes: a boot-info peer entry).
//! - `image` must be known to the caller's `image_exists` callback.
//! - `memory_mib` is 2..=1024 (virtio-seep's memory layout limits).
//! - `thread` is below `threads`.
//! - At most one domain has `disk = true` (the VMM gives it the system's disk).
//! - `calls` names existing domains, not the domain itself, none twice, at most 16 of
//!   them (the boot info lists at most 16 peers), and the call graph is acyclic:
//!   IPC is synchronous, so a cycle could deadlock. A cycle is reported as its path,
//!   `a -> b -> a`.
//!
//! Defaults: policy `enhanced` (OSIRIS's best consistent policy), mode `user` (the
//! fast mode on nested KVM, see docs/guest-modes.md), 4 MiB, thread 0, no disk, and a message
//! rate so high that only a runaway loop meets it ([`MessageRate`]).
#![forbid(unsafe_code)]

pub mod error;
mod graph;
mod parse;
pub mod spec;
mod system;
mod validate;

pub use error::DescriptionError;
pub use spec::{
    DomainId, DomainSpec, MessageRate, Mode, Policy, Role, DEFAULT_MEMORY_MIB, MAX_CALLEES,
    MAX_DOMAINS, MAX_MEMORY_MIB, MAX_THREADS, MIN_MEMORY_MIB, NAME_MAX, VMM_DOMAIN,
};
pub use system::{SystemBuilder, SystemDescription};

/// The example of the crate docs, parsed in the tests so the docs stay true.
#[cfg(test)]
pub(crate) const EXAMPLE_TOML: &str = include_str!("../example.toml");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_is_valid() {
        let system = SystemDescription::from_toml_str(EXAMPLE_TOML, &|_| true).unwrap();
        assert_eq!(system.threads, 2);
        assert_eq!(system.domains.len(), 4);
        let shell = system.spec(system.id_of("shell").unwrap()).unwrap();
        assert_eq!(shell.image, "guests/shell.elf");
        assert_eq!(shell.policy, Policy::None);
        assert_eq!(shell.thread, 1);
        let vfs = system.spec(2).unwrap();
        assert_eq!(vfs.image, "vfs", "the image defaults to the name");
        assert_eq!(vfs.policy, Policy::Enhanced);
    }
}
