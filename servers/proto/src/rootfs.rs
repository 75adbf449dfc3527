//! The root file system archive: what `images/` builds at build time and VFS loads at
//! boot (the VMM hands it over as the bulk data of the `SYS_ROOT_FS` reply).
//!
//! Format: a sequence of entries, each
//! `kind: u8 (1 file, 2 directory) | path_len: u16 LE | path | data_len: u32 LE | data`,
//! with absolute paths, parents listed before their children, directories with no data.

use alloc::vec::Vec;

/// A regular file entry.
pub const ENTRY_FILE: u8 = 1;
/// A directory entry.
pub const ENTRY_DIR: u8 = 2;

/// One entry of the archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// [`ENTRY_FILE`] or [`ENTRY_DIR`].
    pub kind: u8,
    /// Absolute path.
    pub path: &'a str,
    /// File contents (empty for directories).
    pub data: &'a [u8],
}

/// Appends an entry to an archive.
pub fn push(archive: &mut Vec<u8>, kind: u8, path: &str, data: &[u8]) {
    archive.push(kind);
    let path_len = u16::try_from(path.len()).expect("paths are short");
    archive.extend_from_slice(&path_len.to_le_bytes());
    archive.extend_from_slice(path.as_bytes());
    let data_len = u32::try_from(data.len()).expect("files are < 4 GiB");
    archive.extend_from_slice(&data_len.to_le_bytes());
    archive.extend_from_slice(data);
}

/// The entries of an archive; `None` at the first malformed entry.
pub fn entries(archive: &[u8]) -> impl Iterator<Item = Option<Entry<'_>>> + '_ {
    let mut rest = archive;
    core::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let entry = parse(&mut rest);
        if entry.is_none() {
            rest = &[];
        }
        Some(entry)
    })
}

fn parse<'a>(rest: &mut &'a [u8]) -> Option<Entry<'a>> {
    let (&kind, after) = rest.split_first()?;
    let path_len = usize::from(u16::from_le_bytes(after.get(..2)?.try_into().ok()?));
    let path = core::str::from_utf8(after.get(2..2 + path_len)?).ok()?;
    let after = &after[2 + path_len..];
    let data_len = usize::try_from(u32::from_le_bytes(after.get(..4)?.try_into().ok()?)).ok()?;
    let data = after.get(4..4 + data_len)?;
    *rest = &after[4 + data_len..];
    (kind == ENTRY_FILE || kind == ENTRY_DIR).then_some(Entry { kind, path, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archives_round_trip_and_garbage_stops() {
        let mut archive = Vec::new();
        push(&mut archive, ENTRY_DIR, "/bin", b"");
        push(&mut archive, ENTRY_FILE, "/bin/init", b"\x7fELF");
        let got: Vec<_> = entries(&archive).collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Some(Entry {
                kind: ENTRY_FILE,
                path: "/bin/init",
                data: b"\x7fELF"
            })
        );
        archive.truncate(archive.len() - 1);
        assert_eq!(entries(&archive).last(), Some(None));
    }
}
