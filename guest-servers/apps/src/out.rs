//! Console lines without `core::fmt`: [`Text`] builds one, an [`Out`] prints it.

use alloc::vec::Vec;

use ankh_ulib::num::push_dec;

/// Where lines go: the domain's console in a guest, a list in host tests.
pub trait Out {
    /// Prints one line (without its newline).
    fn line(&mut self, line: &[u8]);
}

/// The domain's console: one `ConsoleWrite` hypercall per line.
#[cfg(not(test))]
#[derive(Debug, Default)]
pub struct Console;

#[cfg(not(test))]
impl Out for Console {
    fn line(&mut self, line: &[u8]) {
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line);
        bytes.push(b'\n');
        ankh_guest_rt::hypercall::console_write(&bytes);
    }
}

/// A line under construction.
#[derive(Clone, Debug, Default)]
pub struct Text(Vec<u8>);

impl Text {
    /// An empty line.
    pub fn new() -> Text {
        Text(Vec::new())
    }

    /// Appends a string.
    pub fn str(mut self, text: &str) -> Text {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// Appends an unsigned number in decimal.
    pub fn dec(mut self, value: u64) -> Text {
        push_dec(&mut self.0, value);
        self
    }

    /// Appends a signed number in decimal.
    pub fn int(mut self, value: i64) -> Text {
        if value < 0 {
            self.0.push(b'-');
        }
        push_dec(&mut self.0, value.unsigned_abs());
        self
    }

    /// The bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Prints the line on `out`.
    pub fn send(&self, out: &mut dyn Out) {
        out.line(&self.0);
    }
}
