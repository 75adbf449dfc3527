//! The data store's protocol. Keys and values travel in bulk data:
//! `DS_PUBLISH` `key\0value\0`; `DS_RETRIEVE`/`DS_DELETE` `key\0`; `DS_LIST` and
//! `DS_SUBSCRIBE` `prefix\0`. `DS_RETRIEVE` answers the value as `value\0`,
//! `DS_LIST` the keys as a list, `DS_SUBSCRIBE` (deferred until a key with the prefix
//! is published or deleted) the key as `key\0`. `DS_PROC_SPAWN` (from PM only) carries
//! a [`crate::vfs::ProcSpawn`] record, as `VFS_PROC_SPAWN` does; `DS_PROC_EXIT` (from
//! PM only) an [`OwnerExit`] record.
//!
//! Every key is charged to its owner, the domain that last published it, at
//! [`entry_cost`] bytes, and to the owner's *session* (a process whose parent DS never
//! saw spawned, such as a program init started, with every process it spawned,
//! directly or not). The store as a whole holds at most [`ENTRIES_MAX`] keys and
//! [`STORE_BYTES_MAX`] bytes; one session at most [`SESSION_ENTRIES_MAX`] keys,
//! [`SESSION_BYTES_MAX`] bytes and [`SESSION_SUBSCRIPTIONS_MAX`] parked
//! subscriptions; one owner at most [`OWNER_ENTRIES_MAX`] keys,
//! [`OWNER_BYTES_MAX`] bytes and [`OWNER_SUBSCRIPTIONS_MAX`] parked subscriptions.
//! A publish over any of these is `ENOSPC`; a subscription over them `EAGAIN`.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Longest key.
pub const KEY_MAX: usize = 64;
/// Longest value.
pub const VALUE_MAX: usize = 4096;
/// Most keys.
pub const ENTRIES_MAX: usize = 1024;
/// Most bytes the keys and values of the whole store are charged ([`entry_cost`]).
///
/// DS has 4 MiB of RAM; its image, stack and message buffers leave it about 2 MiB of
/// heap (the issue that set this bound saw the heap end after about 457 values of
/// 4 KiB). A quarter of that for data leaves room for the allocator's fragmentation
/// (values are reallocated on overwrite), the reply copies and the subscriptions.
pub const STORE_BYTES_MAX: usize = 512 << 10;
/// Most keys one owner holds.
pub const OWNER_ENTRIES_MAX: usize = ENTRIES_MAX / 4;
/// Most bytes one owner is charged: an eighth of the store, so one client (or a few)
/// cannot deny the store to the others.
pub const OWNER_BYTES_MAX: usize = STORE_BYTES_MAX / 8;
/// Most keys one session holds: half the store. The owner quota alone does not stop
/// a program that spawns helpers which each publish up to their quota and stay
/// alive (PM lets a session have `pm::SESSION_PROCS_MAX` processes, and eight owners
/// at quota fill the store); with half, what one program's process tree can take
/// leaves the other half (four owners at quota) to the servers and the programs
/// beside it, as VFS's and MM's session shares do. Half is still twice what one
/// owner may hold, so a program and its helpers have room to use DS together.
pub const SESSION_ENTRIES_MAX: usize = ENTRIES_MAX / 2;
/// Most bytes one session is charged: half the store, for the reasons of
/// [`SESSION_ENTRIES_MAX`] (four owners at [`OWNER_BYTES_MAX`]).
pub const SESSION_BYTES_MAX: usize = STORE_BYTES_MAX / 2;
/// Most parked subscriptions.
pub const SUBSCRIPTIONS_MAX: usize = 64;
/// Most parked subscriptions of one session: half of them, for the reasons of
/// [`SESSION_ENTRIES_MAX`] (eight owners at their share would park them all).
pub const SESSION_SUBSCRIPTIONS_MAX: usize = SUBSCRIPTIONS_MAX / 2;
/// Most parked subscriptions of one owner.
pub const OWNER_SUBSCRIPTIONS_MAX: usize = SUBSCRIPTIONS_MAX / 8;
/// What a key costs beyond its bytes: the map node and the two heap blocks.
pub const ENTRY_OVERHEAD: usize = 64;

/// What a key with a value of `value_len` bytes is charged.
pub const fn entry_cost(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + ENTRY_OVERHEAD
}

/// `DS_PROC_EXIT` request (from PM): process `pid` ended.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
#[repr(C)]
pub struct OwnerExit {
    /// The process that ended: its parked subscriptions are answered `ESRCH`.
    pub pid: u32,
    /// Who takes over its keys (its parent), as far as the heir's quota allows; the
    /// rest are deleted. 0: nobody, every key of `pid` is deleted.
    pub heir: u32,
}
