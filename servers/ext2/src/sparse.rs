//! The sparse form of an image, for embedding one in a binary: only its runs of
//! non-zero blocks, with their places. Decoding treats the form as untrusted data:
//! every length and place is checked before anything is written.
//!
//! Layout (little-endian): magic `ANKHSPR1`, block size (u64), total blocks (u64),
//! run count (u64); then per run its first block (u64), its length in
//! blocks (u64) and its contents. Runs are in increasing order, apart, and inside the
//! image.

use alloc::vec::Vec;

use ankh_proto::errno::{self, Errno};

use crate::device::BLOCK_SIZE;
use crate::layout::BLOCK_BYTES;

const MAGIC: [u8; 8] = *b"ANKHSPR1";
const HEADER: usize = 32;
const RUN_HEADER: usize = 16;

/// The sparse form of `image` (its length rounded up to whole blocks).
pub fn sparse(image: &[u8]) -> Vec<u8> {
    let blocks: Vec<&[u8]> = image.chunks(BLOCK_SIZE).collect();
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        if block.iter().all(|&b| b == 0) {
            continue;
        }
        match runs.last_mut() {
            Some((first, len)) if *first + *len == i => *len += 1,
            _ => runs.push((i, 1)),
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&BLOCK_BYTES.to_le_bytes());
    out.extend_from_slice(&(blocks.len() as u64).to_le_bytes());
    out.extend_from_slice(&(runs.len() as u64).to_le_bytes());
    for (first, len) in runs {
        out.extend_from_slice(&(first as u64).to_le_bytes());
        out.extend_from_slice(&(len as u64).to_le_bytes());
        for block in &blocks[first..first + len] {
            out.extend_from_slice(block);
            out.resize(out.len() + (BLOCK_SIZE - block.len()), 0);
        }
    }
    out
}

/// Reads a little-endian u64 at `at` (`EINVAL` past the end).
fn u64_at(bytes: &[u8], at: usize) -> Result<u64, Errno> {
    let field = bytes
        .get(at..at.checked_add(8).ok_or(errno::EINVAL)?)
        .ok_or(errno::EINVAL)?;
    let mut le = [0; 8];
    le.copy_from_slice(field);
    Ok(u64::from_le_bytes(le))
}

/// Walks a sparse form, checking it, and hands each run to `run` as its byte offset
/// in the image and its contents. Returns the image size in bytes.
fn walk(form: &[u8], mut run: impl FnMut(u64, &[u8])) -> Result<u64, Errno> {
    if form.get(..8) != Some(&MAGIC[..]) || form.len() < HEADER {
        return Err(errno::EINVAL);
    }
    let block_size = u64_at(form, 8)?;
    if block_size != BLOCK_BYTES {
        return Err(errno::EINVAL);
    }
    let total = u64_at(form, 16)?;
    let size = total.checked_mul(BLOCK_BYTES).ok_or(errno::EINVAL)?;
    let count = u64_at(form, 24)?;
    let mut at = HEADER;
    let mut next_free = 0u64;
    for _ in 0..count {
        let first = u64_at(form, at)?;
        let len = u64_at(form, at + 8)?;
        let end = first.checked_add(len).ok_or(errno::EINVAL)?;
        if len == 0 || first < next_free || end > total {
            return Err(errno::EINVAL);
        }
        let bytes = usize::try_from(len)
            .ok()
            .and_then(|len| len.checked_mul(BLOCK_SIZE))
            .ok_or(errno::EINVAL)?;
        let start = at + RUN_HEADER;
        let data = form
            .get(start..start.checked_add(bytes).ok_or(errno::EINVAL)?)
            .ok_or(errno::EINVAL)?;
        run(first * BLOCK_BYTES, data);
        at = start + bytes;
        next_free = end;
    }
    if at != form.len() {
        return Err(errno::EINVAL);
    }
    Ok(size)
}

/// The size in bytes of the image a sparse form describes, after checking the whole
/// form (`EINVAL` when malformed).
pub fn sparse_len(form: &[u8]) -> Result<u64, Errno> {
    walk(form, |_, _| {})
}

/// Writes the image a sparse form describes through `write(byte offset, bytes)`
/// (blocks left out are zeros: the caller starts from a zeroed or sparse file of
/// [`sparse_len`] bytes). The form is checked whole before the first write; returns
/// the image size in bytes.
pub fn unsparse_into(form: &[u8], write: impl FnMut(u64, &[u8])) -> Result<u64, Errno> {
    sparse_len(form)?;
    walk(form, write)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn round_trip_and_checks() {
        let mut image = vec![0u8; 10 * BLOCK_SIZE];
        image[BLOCK_SIZE + 5] = 1;
        image[2 * BLOCK_SIZE] = 2;
        image[7 * BLOCK_SIZE + 9] = 3;
        let form = sparse(&image);
        assert_eq!(form.len(), HEADER + 2 * RUN_HEADER + 3 * BLOCK_SIZE);
        let mut back = vec![0u8; usize::try_from(sparse_len(&form).unwrap()).unwrap()];
        unsparse_into(&form, |at, data| {
            let at = usize::try_from(at).unwrap();
            back[at..at + data.len()].copy_from_slice(data);
        })
        .unwrap();
        assert_eq!(back, image);
        for cut in [0, 7, HEADER, form.len() - 1] {
            assert_eq!(sparse_len(&form[..cut]), Err(errno::EINVAL));
        }
        let mut bad = form.clone();
        bad[HEADER..HEADER + 8].copy_from_slice(&9u64.to_le_bytes());
        assert_eq!(sparse_len(&bad), Err(errno::EINVAL));
        let mut wrote = false;
        assert_eq!(unsparse_into(&bad, |_, _| wrote = true), Err(errno::EINVAL));
        assert!(!wrote);
    }
}
