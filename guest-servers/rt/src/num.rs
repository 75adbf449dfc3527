//! Integer formatting without `core::fmt` (whose precompiled integer `Display` contains
//! SSE instructions): decimal and hexadecimal digits into small stack buffers.

/// Enough bytes for any `u64` in decimal (`u64::MAX` has 20 digits).
pub const DEC_MAX: usize = 20;

/// Enough bytes for any `u64` in hexadecimal, without prefix.
pub const HEX_MAX: usize = 16;

/// The digits, indexed by value.
const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `value` in base `radix` (2..=16) into the end of `buf` and returns the digits
/// (at least one: zero is `0`).
fn digits(mut value: u64, radix: u64, buf: &mut [u8]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        // The digit is below `radix` <= 16: the conversion cannot fail.
        let digit = usize::try_from(value % radix).unwrap_or(0);
        buf[start] = DIGITS[digit];
        value /= radix;
        if value == 0 {
            return &buf[start..];
        }
    }
}

/// `value` in decimal, e.g. `b"42"`.
pub fn dec(value: u64, buf: &mut [u8; DEC_MAX]) -> &[u8] {
    digits(value, 10, buf)
}

/// `value` in lowercase hexadecimal without prefix or leading zeros, e.g. `b"1f"`.
pub fn hex(value: u64, buf: &mut [u8; HEX_MAX]) -> &[u8] {
    digits(value, 16, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec_string(value: u64) -> String {
        String::from_utf8(dec(value, &mut [0; DEC_MAX]).to_vec()).unwrap()
    }

    fn hex_string(value: u64) -> String {
        String::from_utf8(hex(value, &mut [0; HEX_MAX]).to_vec()).unwrap()
    }

    #[test]
    fn decimal() {
        for value in [
            0,
            1,
            9,
            10,
            42,
            99,
            100,
            4096,
            1 << 32,
            u64::MAX - 1,
            u64::MAX,
        ] {
            assert_eq!(dec_string(value), value.to_string());
        }
    }

    #[test]
    fn hexadecimal() {
        for value in [0, 1, 0xf, 0x10, 0xdead_beef, 0x40_0000_0000, u64::MAX] {
            assert_eq!(hex_string(value), format!("{value:x}"));
        }
    }
}
