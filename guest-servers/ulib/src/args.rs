//! Handing numbers from a parent to the child it spawns, through DS.
//!
//! PM takes an argv with `PM_SPAWN` but nothing delivers it to the child yet (the
//! protocol has no call for it). Until then, a parent publishes the numbers a child
//! needs (e.g. pipe descriptors it inherits) under the DS key `args.<parent pid>`
//! *before* spawning, and the child reads them back with [`Os::parent_args`], keyed by
//! its `getppid`. Publishing before the spawn means there is no race with the child;
//! a parent that spawns several children with different numbers must wait until each
//! child has read them (e.g. until it answers on a pipe) before publishing the next.
//!
//! The value is the numbers in decimal, separated by single spaces.

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::errno::EINVAL;
use ankh_proto::{Errno, Pid};

use crate::num::{parse_dec, push_dec};
use crate::{Channel, Os};

/// The DS key prefix of the arguments a parent hands its children.
pub const ARGS_PREFIX: &str = "args.";

/// The DS key of the arguments the process `parent` hands its children.
pub fn args_key(parent: Pid) -> String {
    let mut key = Vec::from(ARGS_PREFIX.as_bytes());
    push_dec(&mut key, u64::from(parent));
    String::from_utf8(key).unwrap_or_default()
}

/// `values` as the DS value: decimal numbers separated by spaces.
pub fn encode(values: &[u64]) -> String {
    let mut text = Vec::new();
    for (index, value) in values.iter().enumerate() {
        if index > 0 {
            text.push(b' ');
        }
        push_dec(&mut text, *value);
    }
    String::from_utf8(text).unwrap_or_default()
}

/// The numbers of a DS value made by [`encode`] (`EINVAL` when malformed).
pub fn decode(text: &str) -> Result<Vec<u64>, Errno> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(' ')
        .map(|word| parse_dec(word.as_bytes()).ok_or(EINVAL))
        .collect()
}

impl<C: Channel> Os<C> {
    /// Publishes `values` for the children this process spawns next.
    pub fn pass_args(&mut self, values: &[u64]) -> Result<(), Errno> {
        let me = self.getpid()?;
        self.ds_publish(&args_key(me), &encode(values))
    }

    /// The numbers the parent published with [`Os::pass_args`] (`ENOENT`: none).
    pub fn parent_args(&mut self) -> Result<Vec<u64>, Errno> {
        let parent = self.getppid()?;
        decode(&self.ds_retrieve(&args_key(parent))?)
    }
}
