//! The system description of an Ankh system.
//!
//! This crate will own which domains exist, the image each one boots, its memory size,
//! the call graph (who may send to whom) and the recovery policy of each domain, read
//! from a TOML file with a built-in default and validated with clear errors.
//! It is pure data and validation: it never touches KVM, guest memory or threads.
//!
//! Today it is empty: the foundation boots one image at a time (`ankh run-image`); the
//! virtio-seep issue fills it.
#![forbid(unsafe_code)]
