//! Domain consoles: guest bytes become lines prefixed with the domain's name.
//!
//! Guest output is untrusted: it is cut into lines of bounded length, decoded as UTF-8
//! with replacement, and stripped of control characters, so a guest can neither forge
//! another domain's prefix on the same line nor send escape sequences to the terminal.

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Longest line kept; longer output is split.
pub const MAX_LINE: usize = 4096;

/// Where complete console lines go.
pub trait ConsoleSink: Send {
    /// Receives one complete line (without its newline) from `domain`.
    fn line(&mut self, domain: &str, line: &str);
}

/// Prints `[domain] line` on standard output.
#[derive(Default)]
pub struct StdoutConsole;

impl ConsoleSink for StdoutConsole {
    fn line(&mut self, domain: &str, line: &str) {
        let mut out = std::io::stdout().lock();
        // A closed stdout must not kill the VMM; the line is simply lost.
        let _ = writeln!(out, "[{domain}] {line}");
    }
}

/// Keeps lines in memory, for tests and tools that inspect output.
#[derive(Clone, Default)]
pub struct CapturedConsole {
    lines: Arc<Mutex<Vec<String>>>,
}

impl CapturedConsole {
    /// The lines received so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("console lock").clone()
    }
}

impl ConsoleSink for CapturedConsole {
    fn line(&mut self, _domain: &str, line: &str) {
        self.lines
            .lock()
            .expect("console lock")
            .push(line.to_owned());
    }
}

/// Assembles one domain's console bytes into lines.
pub struct Console {
    domain: String,
    pending: Vec<u8>,
    sink: Box<dyn ConsoleSink>,
}

impl Console {
    /// A console for `domain` that emits lines to `sink`.
    pub fn new(domain: &str, sink: Box<dyn ConsoleSink>) -> Console {
        Console {
            domain: domain.to_owned(),
            pending: Vec::new(),
            sink,
        }
    }

    /// Appends guest bytes, emitting every line they complete.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.emit();
            } else {
                self.pending.push(byte);
                if self.pending.len() >= MAX_LINE {
                    self.emit();
                }
            }
        }
    }

    /// Emits a pending partial line (when the domain stops).
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            self.emit();
        }
    }

    fn emit(&mut self) {
        let line = self.pending.strip_suffix(b"\r").unwrap_or(&self.pending);
        let text = String::from_utf8_lossy(line);
        let clean: String = text
            .chars()
            .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
            .collect();
        self.sink.line(&self.domain, &clean);
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn console() -> (Console, CapturedConsole) {
        let captured = CapturedConsole::default();
        (Console::new("d", Box::new(captured.clone())), captured)
    }

    #[test]
    fn lines_are_split_on_newlines_across_writes() {
        let (mut c, out) = console();
        c.write(b"hel");
        c.write(b"lo\nwor");
        assert_eq!(out.lines(), ["hello"]);
        c.write(b"ld\n");
        assert_eq!(out.lines(), ["hello", "world"]);
    }

    #[test]
    fn control_characters_and_bad_utf8_are_neutralized() {
        let (mut c, out) = console();
        c.write(b"\x1b[2Jevil\xff\tok\r\n");
        assert_eq!(out.lines(), ["?[2Jevil\u{fffd}\tok"]);
    }

    #[test]
    fn long_lines_are_split_and_partial_lines_flushed() {
        let (mut c, out) = console();
        c.write(&vec![b'x'; MAX_LINE + 3]);
        c.flush();
        let lines = out.lines();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE);
        assert_eq!(lines[1], "xxx");
    }
}
