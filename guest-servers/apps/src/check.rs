//! [`Checker`]: counts checks, prints each failure, prints the summary.

use ankh_ulib::Errno;

use crate::out::{Out, Text};

/// Counts passed and failed checks of one program. A passing check prints nothing; a
/// failing one prints `<prefix>: FAIL <name> <detail>`; [`Checker::summary`] prints
/// `N passed, M failed`.
pub struct Checker<'o> {
    /// Where failures and the summary go.
    out: &'o mut dyn Out,
    /// The program's name, first on every failure line.
    prefix: &'static str,
    /// Checks that passed.
    passed: u64,
    /// Checks that failed.
    failed: u64,
}

impl<'o> Checker<'o> {
    /// A checker printing to `out` as `prefix`.
    pub fn new(out: &'o mut dyn Out, prefix: &'static str) -> Checker<'o> {
        Checker {
            out,
            prefix,
            passed: 0,
            failed: 0,
        }
    }

    /// Checks that passed so far.
    pub fn passed(&self) -> u64 {
        self.passed
    }

    /// Checks that failed so far.
    pub fn failed(&self) -> u64 {
        self.failed
    }

    /// The output, for other lines.
    pub fn out(&mut self) -> &mut dyn Out {
        self.out
    }

    /// Records a failure of `name` with `detail` (already formatted).
    fn fail(&mut self, name: &str, detail: Text) {
        self.failed += 1;
        let line = Text::new()
            .str(self.prefix)
            .str(": FAIL ")
            .str(name)
            .str(" ");
        let mut bytes = alloc::vec::Vec::from(line.as_bytes());
        bytes.extend_from_slice(detail.as_bytes());
        self.out.line(&bytes);
    }

    /// A check that `ok` holds; returns `ok`.
    pub fn check(&mut self, name: &str, ok: bool) -> bool {
        if ok {
            self.passed += 1;
        } else {
            self.fail(name, Text::new().str("(condition false)"));
        }
        ok
    }

    /// A check that `result` is `Ok`; returns its value.
    pub fn ok<T>(&mut self, name: &str, result: Result<T, Errno>) -> Option<T> {
        match result {
            Ok(value) => {
                self.passed += 1;
                Some(value)
            }
            Err(errno) => {
                self.fail(name, Text::new().str("errno ").int(errno.into()));
                None
            }
        }
    }

    /// A check that `result` is `Err(want)`.
    pub fn err<T>(&mut self, name: &str, result: Result<T, Errno>, want: Errno) -> bool {
        match result {
            Err(errno) if errno == want => {
                self.passed += 1;
                true
            }
            Err(errno) => {
                let detail = Text::new()
                    .str("errno ")
                    .int(errno.into())
                    .str(" want ")
                    .int(want.into());
                self.fail(name, detail);
                false
            }
            Ok(_) => {
                self.fail(
                    name,
                    Text::new().str("succeeded, want errno ").int(want.into()),
                );
                false
            }
        }
    }

    /// A check that `result` is `Err` (any errno).
    pub fn fails<T>(&mut self, name: &str, result: Result<T, Errno>) -> bool {
        let failed = result.is_err();
        if failed {
            self.passed += 1;
        } else {
            self.fail(name, Text::new().str("succeeded, want an error"));
        }
        failed
    }

    /// A check that `got == want` (numbers).
    pub fn eq(&mut self, name: &str, got: i64, want: i64) -> bool {
        if got == want {
            self.passed += 1;
            true
        } else {
            self.fail(
                name,
                Text::new().str("got ").int(got).str(" want ").int(want),
            );
            false
        }
    }

    /// A check that `result` is `Ok(want)` (anything comparable; the detail says only
    /// whether it was an error).
    pub fn ok_eq<T: PartialEq>(&mut self, name: &str, result: Result<T, Errno>, want: T) -> bool {
        match result {
            Ok(value) if value == want => {
                self.passed += 1;
                true
            }
            Ok(_) => {
                self.fail(name, Text::new().str("wrong value"));
                false
            }
            Err(errno) => {
                self.fail(name, Text::new().str("errno ").int(errno.into()));
                false
            }
        }
    }

    /// Prints `N passed, M failed` and returns the exit code: 0 iff nothing failed.
    pub fn summary(&mut self) -> u32 {
        Text::new()
            .dec(self.passed)
            .str(" passed, ")
            .dec(self.failed)
            .str(" failed")
            .send(self.out);
        u32::from(self.failed != 0)
    }
}
