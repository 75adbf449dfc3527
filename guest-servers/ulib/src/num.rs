//! Decimal numbers in text without `core::fmt` (whose precompiled integer formatting
//! contains SSE instructions).

use alloc::vec::Vec;

/// Appends `value` in decimal to `out`.
pub fn push_dec(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10).to_le_bytes()[0];
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Parses a decimal number (digits only, no sign, no overflow), `None` otherwise.
pub fn parse_dec(text: &[u8]) -> Option<u64> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0u64, |value, &byte| {
        let digit = byte.checked_sub(b'0').filter(|digit| *digit < 10)?;
        value.checked_mul(10)?.checked_add(u64::from(digit))
    })
}
