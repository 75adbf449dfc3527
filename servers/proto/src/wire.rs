//! Encoding helpers: fixed records in inline payloads, string lists in bulk data.

use alloc::vec::Vec;

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use crate::errno::{self, Errno};

/// Reads a fixed record from the start of an inline payload (`EINVAL` when short).
pub fn record<T: FromBytes + KnownLayout + Immutable>(payload: &[u8]) -> Result<T, Errno> {
    T::read_from_prefix(payload)
        .map(|(value, _)| value)
        .map_err(|_| errno::EINVAL)
}

/// The bytes of a record, for a payload.
pub fn bytes<T: IntoBytes + Immutable>(value: &T) -> Vec<u8> {
    value.as_bytes().to_vec()
}

/// Joins strings into a NUL-terminated list (`"a\0b\0"`).
pub fn join<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut out = Vec::new();
    for item in items {
        out.extend_from_slice(item.as_bytes());
        out.push(0);
    }
    out
}

/// Splits a NUL-terminated list; `EINVAL` when it is not UTF-8 or not terminated.
pub fn split(bulk: &[u8]) -> Result<Vec<&str>, Errno> {
    if bulk.is_empty() {
        return Ok(Vec::new());
    }
    let Some((&0, body)) = bulk.split_last() else {
        return Err(errno::EINVAL);
    };
    body.split(|&b| b == 0)
        .map(|s| core::str::from_utf8(s).map_err(|_| errno::EINVAL))
        .collect()
}

/// The one string of a list of one (a path, a key); `EINVAL` otherwise.
pub fn single(bulk: &[u8]) -> Result<&str, Errno> {
    match split(bulk)?.as_slice() {
        [one] => Ok(one),
        _ => Err(errno::EINVAL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_round_trip() {
        let bulk = join(["/bin/init", "", "x"]);
        assert_eq!(split(&bulk).unwrap(), ["/bin/init", "", "x"]);
        assert_eq!(split(b"").unwrap(), Vec::<&str>::new());
        assert_eq!(split(b"abc"), Err(errno::EINVAL));
        assert_eq!(split(b"\xff\0"), Err(errno::EINVAL));
        assert_eq!(single(&join(["/a"])).unwrap(), "/a");
        assert_eq!(single(&join(["/a", "/b"])), Err(errno::EINVAL));
    }

    #[test]
    fn short_records_are_einval() {
        assert_eq!(record::<u64>(&[1, 2, 3]), Err(errno::EINVAL));
        assert_eq!(record::<u32>(&7u32.to_le_bytes()).unwrap(), 7);
    }
}
