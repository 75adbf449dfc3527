//! Keys, prefixes and values as they arrive in bulk data, checked against the bounds
//! of [`ankh_proto::ds`].

use ankh_proto::ds::{KEY_MAX, VALUE_MAX};
use ankh_proto::errno::{self, Errno};
use ankh_proto::wire;

/// A key: 1..=`KEY_MAX` bytes (`EINVAL` when empty, `ENAMETOOLONG` when longer).
pub(crate) fn key(key: &str) -> Result<&str, Errno> {
    if key.is_empty() {
        return Err(errno::EINVAL);
    }
    prefix(key)
}

/// A prefix of keys: at most `KEY_MAX` bytes (`ENAMETOOLONG`); empty matches all.
pub(crate) fn prefix(prefix: &str) -> Result<&str, Errno> {
    if prefix.len() > KEY_MAX {
        return Err(errno::ENAMETOOLONG);
    }
    Ok(prefix)
}

/// A value: at most `VALUE_MAX` bytes (`E2BIG`).
pub(crate) fn value(value: &str) -> Result<&str, Errno> {
    if value.len() > VALUE_MAX {
        return Err(errno::E2BIG);
    }
    Ok(value)
}

/// The bulk data of `DS_PUBLISH`: `key\0value\0` (`EINVAL` for any other list).
pub(crate) fn publication(bulk: &[u8]) -> Result<(&str, &str), Errno> {
    match wire::split(bulk)?.as_slice() {
        [k, v] => Ok((key(k)?, value(v)?)),
        _ => Err(errno::EINVAL),
    }
}
