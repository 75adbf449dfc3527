//! [`Checker`]: counts checks, prints each failure, prints the summary.
//!
//! A failed check is *after ERESTART* when a server answered one of the calls made for
//! it `ERESTART` (the program's channel counts them, and makes such a call again up
//! to a bound: [`crate::restart::Watched`]; a check fails after ERESTART when the
//! bound ran out, or when the call made again was answered differently, e.g. because a
//! server it called on the suite's behalf had done part of the work).
//! "The calls made for it" are those since the previous check was counted: the call
//! whose result is checked, and any call whose result feeds the check's condition.
//! A failure caused by an earlier check's `ERESTART` (a file a restarted `create`
//! never made, read later) is not after ERESTART: the rule is strict on purpose, so
//! that "every failure followed an ERESTART" is a claim about each failure itself.

use alloc::rc::Rc;
use core::cell::Cell;

use ankh_ulib::Errno;

use crate::out::{Out, Text};

/// What a failure line ends with when the failure is after ERESTART.
pub const AFTER_RESTART: &str = " (after ERESTART)";

/// Counts passed and failed checks of one program. A passing check prints nothing; a
/// failing one prints `<prefix>: FAIL <name> <detail>` (plus [`AFTER_RESTART`] when it
/// is after one); [`Checker::summary`] prints
/// `<prefix>: M failed, K of them after ERESTART`, then `N passed, M failed`.
pub struct Checker<'o> {
    /// Where failures and the summary go.
    out: &'o mut dyn Out,
    /// The program's name, first on every failure line.
    prefix: &'static str,
    /// Checks that passed.
    passed: u64,
    /// Checks that failed.
    failed: u64,
    /// Of them, those after ERESTART.
    failed_after_restart: u64,
    /// The program's count of `ERESTART` answers, if it keeps one.
    restarts: Option<Rc<Cell<u64>>>,
    /// That count when the previous check was counted.
    restarts_seen: u64,
    /// That count when the checker was made.
    restarts_at_start: u64,
}

impl<'o> Checker<'o> {
    /// A checker printing to `out` as `prefix`, which sees no `ERESTART` (no failure
    /// is after one).
    pub fn new(out: &'o mut dyn Out, prefix: &'static str) -> Checker<'o> {
        Checker {
            out,
            prefix,
            passed: 0,
            failed: 0,
            failed_after_restart: 0,
            restarts: None,
            restarts_seen: 0,
            restarts_at_start: 0,
        }
    }

    /// The same, attributing failures with `restarts`, the count of `ERESTART` answers
    /// the program got ([`crate::restart::Watched::counter`]).
    pub fn watching(
        out: &'o mut dyn Out,
        prefix: &'static str,
        restarts: Rc<Cell<u64>>,
    ) -> Checker<'o> {
        let restarts_seen = restarts.get();
        Checker {
            restarts: Some(restarts),
            restarts_seen,
            restarts_at_start: restarts_seen,
            ..Checker::new(out, prefix)
        }
    }

    /// Failed checks after ERESTART so far.
    pub fn failed_after_restart(&self) -> u64 {
        self.failed_after_restart
    }

    /// Whether an `ERESTART` came since the previous check was counted; starts the
    /// next check's span.
    fn restarted_since_last_check(&mut self) -> bool {
        let Some(restarts) = &self.restarts else {
            return false;
        };
        let now = restarts.get();
        let restarted = now != self.restarts_seen;
        self.restarts_seen = now;
        restarted
    }

    /// Counts a passed check.
    fn pass(&mut self) {
        self.passed += 1;
        self.restarted_since_last_check();
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
        let after_restart = self.restarted_since_last_check();
        let line = Text::new()
            .str(self.prefix)
            .str(": FAIL ")
            .str(name)
            .str(" ");
        let mut bytes = alloc::vec::Vec::from(line.as_bytes());
        bytes.extend_from_slice(detail.as_bytes());
        if after_restart {
            self.failed_after_restart += 1;
            bytes.extend_from_slice(AFTER_RESTART.as_bytes());
        }
        self.out.line(&bytes);
    }

    /// A check that `ok` holds; returns `ok`.
    pub fn check(&mut self, name: &str, ok: bool) -> bool {
        if ok {
            self.pass();
        } else {
            self.fail(name, Text::new().str("(condition false)"));
        }
        ok
    }

    /// A check that `result` is `Ok`; returns its value.
    pub fn ok<T>(&mut self, name: &str, result: Result<T, Errno>) -> Option<T> {
        match result {
            Ok(value) => {
                self.pass();
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
                self.pass();
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
            self.pass();
        } else {
            self.fail(name, Text::new().str("succeeded, want an error"));
        }
        failed
    }

    /// A check that `got == want` (numbers).
    pub fn eq(&mut self, name: &str, got: i64, want: i64) -> bool {
        if got == want {
            self.pass();
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
                self.pass();
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

    /// Prints `<prefix>: M failed, K of them after ERESTART` (then, when it keeps a
    /// count of them, `; R ERESTART answers`: all the checks' calls got), then
    /// `N passed, M failed` (always last), and returns the exit code: 0 iff nothing
    /// failed.
    pub fn summary(&mut self) -> u32 {
        let mut attribution = Text::new()
            .str(self.prefix)
            .str(": ")
            .dec(self.failed)
            .str(" failed, ")
            .dec(self.failed_after_restart)
            .str(" of them after ERESTART");
        if let Some(restarts) = &self.restarts {
            attribution = attribution
                .str("; ")
                .dec(restarts.get() - self.restarts_at_start)
                .str(" ERESTART answers");
        }
        attribution.send(self.out);
        Text::new()
            .dec(self.passed)
            .str(" passed, ")
            .dec(self.failed)
            .str(" failed")
            .send(self.out);
        u32::from(self.failed != 0)
    }
}
