//! The data store's protocol. Keys and values travel in bulk data:
//! `DS_PUBLISH` `key\0value\0`; `DS_RETRIEVE`/`DS_DELETE` `key\0`; `DS_LIST` and
//! `DS_SUBSCRIBE` `prefix\0`. `DS_RETRIEVE` answers the value as `value\0`,
//! `DS_LIST` the keys as a list, `DS_SUBSCRIBE` (deferred until a key with the prefix
//! is published or deleted) the key as `key\0`.

/// Longest key.
pub const KEY_MAX: usize = 64;
/// Longest value.
pub const VALUE_MAX: usize = 4096;
/// Most keys.
pub const ENTRIES_MAX: usize = 1024;
/// Most parked subscriptions.
pub const SUBSCRIPTIONS_MAX: usize = 64;
