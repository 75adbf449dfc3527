//! The OS server images: `pm`, `vfs`, `ds`, `mm` (`src/bin/`), each a few lines that
//! build a server crate's state machine and hand it to `ankh_serve::run`.
//!
//! [`conventions`] holds what the images assume about the system description (the
//! order of the OS domains, from which init's pid follows).
#![cfg_attr(not(test), no_std)]

pub mod conventions;
