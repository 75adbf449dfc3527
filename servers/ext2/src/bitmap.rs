//! Allocation bitmaps (one bit per block or inode of a group, least significant bit
//! first): testing, setting and clearing bits, and finding a clear one.

/// True when bit `index` is set (bits past the slice read as set: nothing to allocate).
pub fn get(bitmap: &[u8], index: usize) -> bool {
    bitmap
        .get(index / 8)
        .is_none_or(|byte| byte & (1 << (index % 8)) != 0)
}

/// Sets bit `index` (nothing past the slice).
pub fn set(bitmap: &mut [u8], index: usize) {
    if let Some(byte) = bitmap.get_mut(index / 8) {
        *byte |= 1 << (index % 8);
    }
}

/// Clears bit `index` (nothing past the slice).
pub fn clear(bitmap: &mut [u8], index: usize) {
    if let Some(byte) = bitmap.get_mut(index / 8) {
        *byte &= !(1 << (index % 8));
    }
}

/// The first clear bit in `from..limit`, then (wrapping) in `0..from`.
pub fn find_clear(bitmap: &[u8], from: usize, limit: usize) -> Option<usize> {
    let limit = limit.min(bitmap.len() * 8);
    let from = if from < limit { from } else { 0 };
    find_clear_in(bitmap, from, limit).or_else(|| find_clear_in(bitmap, 0, from))
}

/// The first clear bit in `start..end`, a byte at a time where bytes are full.
fn find_clear_in(bitmap: &[u8], start: usize, end: usize) -> Option<usize> {
    let mut index = start;
    while index < end {
        if index & 7 == 0 && index + 8 <= end && bitmap[index / 8] == 0xFF {
            index += 8;
            continue;
        }
        if !get(bitmap, index) {
            return Some(index);
        }
        index += 1;
    }
    None
}

/// Sets every bit from `from` to the end of the slice (the padding past the last
/// block or inode of a group, which e2fsck wants set).
pub fn set_from(bitmap: &mut [u8], from: usize) {
    for index in from..bitmap.len() * 8 {
        set(bitmap, index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_clear_bits_wrapping() {
        let mut bits = [0u8; 4];
        for i in 0..20 {
            set(&mut bits, i);
        }
        assert_eq!(find_clear(&bits, 0, 32), Some(20));
        assert_eq!(find_clear(&bits, 25, 32), Some(25));
        assert_eq!(find_clear(&bits, 5, 20), None);
        clear(&mut bits, 3);
        assert_eq!(find_clear(&bits, 10, 20), Some(3));
        assert!(!get(&bits, 3) && get(&bits, 4) && get(&bits, 1000));
        set_from(&mut bits, 30);
        assert_eq!(bits[3], 0b1100_0000);
        assert_eq!(find_clear(&bits, 40, 1000), Some(3));
    }
}
