//! Console output: whole lines, one `ConsoleWrite` hypercall (one VM exit) per line.
//!
//! ```ignore
//! Line::new().str("pages=").dec(12).str(" at ").hex(0x10_0000).send();
//! // prints "pages=12 at 0x100000"
//! ```

use crate::hypercall;
use crate::num;

/// Bytes a [`Line`] holds before it sends what it has (without the newline, which the
/// VMM waits for) and starts over.
pub const LINE_CAPACITY: usize = 128;

/// A console line under construction, in a fixed buffer on the stack.
///
/// Build it with the chained methods and finish it with [`Line::send`]. A line longer
/// than [`LINE_CAPACITY`] is sent in several writes; the VMM still prints it as one.
pub struct Line {
    buf: [u8; LINE_CAPACITY],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Line {
        Line {
            buf: [0; LINE_CAPACITY],
            len: 0,
        }
    }

    /// Appends raw bytes (normally UTF-8).
    pub fn bytes(&mut self, mut bytes: &[u8]) -> &mut Line {
        while !bytes.is_empty() {
            if self.len == LINE_CAPACITY {
                self.flush();
            }
            let room = LINE_CAPACITY - self.len;
            let (now, rest) = bytes.split_at(room.min(bytes.len()));
            self.buf[self.len..self.len + now.len()].copy_from_slice(now);
            self.len += now.len();
            bytes = rest;
        }
        self
    }

    /// Appends a string.
    pub fn str(&mut self, text: &str) -> &mut Line {
        self.bytes(text.as_bytes())
    }

    /// Appends `value` in decimal.
    pub fn dec(&mut self, value: u64) -> &mut Line {
        self.bytes(num::dec(value, &mut [0; num::DEC_MAX]))
    }

    /// Appends `value` in decimal, with a `-` when negative (e.g. an errno).
    pub fn int(&mut self, value: i64) -> &mut Line {
        if value < 0 {
            self.bytes(b"-");
        }
        self.dec(value.unsigned_abs())
    }

    /// Appends `value` in hexadecimal with a `0x` prefix, e.g. `0x1f`.
    pub fn hex(&mut self, value: u64) -> &mut Line {
        self.bytes(b"0x")
            .bytes(num::hex(value, &mut [0; num::HEX_MAX]))
    }

    /// Ends the line with `\n` and sends it (one hypercall for lines that fit).
    pub fn send(&mut self) {
        self.bytes(b"\n");
        self.flush();
    }

    /// Sends what the buffer holds, if anything, and empties it.
    fn flush(&mut self) {
        if self.len > 0 {
            hypercall::console_write(&self.buf[..self.len]);
            self.len = 0;
        }
    }
}

impl Default for Line {
    fn default() -> Line {
        Line::new()
    }
}

/// Prints `text` followed by a newline (one hypercall when it fits in a [`Line`]).
pub fn println_str(text: &str) {
    Line::new().str(text).send();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hypercall::take_console;

    #[test]
    fn one_write_per_line() {
        take_console();
        Line::new().str("x=").dec(42).str(" y=").hex(0x10).send();
        println_str("hello from demo");
        assert_eq!(
            take_console(),
            [b"x=42 y=0x10\n".to_vec(), b"hello from demo\n".to_vec()]
        );
    }

    #[test]
    fn signed_decimal() {
        take_console();
        Line::new()
            .int(35)
            .str(" ")
            .int(-4)
            .str(" ")
            .int(0)
            .str(" ")
            .int(i64::MIN)
            .send();
        assert_eq!(take_console(), [b"35 -4 0 -9223372036854775808\n".to_vec()]);
    }

    #[test]
    fn long_lines_are_split_but_complete() {
        take_console();
        let text = "a".repeat(LINE_CAPACITY + 10);
        println_str(&text);
        let writes = take_console();
        assert_eq!(writes.len(), 2);
        assert_eq!(writes[0].len(), LINE_CAPACITY);
        assert_eq!(writes.concat(), format!("{text}\n").into_bytes());
    }

    #[test]
    fn exactly_full_line_sends_newline_separately() {
        take_console();
        println_str(&"b".repeat(LINE_CAPACITY));
        assert_eq!(take_console().len(), 2);
    }

    #[test]
    fn empty_line_is_just_a_newline() {
        take_console();
        Line::new().send();
        assert_eq!(take_console(), [b"\n".to_vec()]);
    }
}
