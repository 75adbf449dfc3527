//! The OS conformance suite: PM, VFS, DS and MM semantics, error cases included.
//!
//! Each check prints nothing when it passes and `suite: FAIL <name> <detail>` when it
//! fails (ending ` (after ERESTART)` when a server answered one of its calls
//! `ERESTART`, see [`crate::check`]); then `suite: M failed, K of them after ERESTART`;
//! the last line is exactly `N passed, M failed`, and the exit code is 0 iff nothing
//! failed. `suite --runs N` runs it N times in a row ([`runs`]). The sections:
//! - [`files`]: files, directories, descriptors, offsets, paths and their errors;
//! - [`pipes`]: pipes in one process (data, end of file, `EPIPE`, `ESPIPE`);
//! - [`store`]: DS publish/retrieve/list/delete, bounds, `ENOSPC` when full;
//! - [`memory`]: MM brk/map/unmap/usage and `ENOMEM`;
//! - [`processes`]: spawn/wait/kill/ps with the helper programs, pipes between parent
//!   and child, descriptor inheritance, DS subscriptions woken by a child;
//! - [`limits`]: `EMFILE` and `ENFILE` (the latter with `child-hog` processes);
//! - [`guards`]: what the library refuses without a call (`EFAULT`, `EINVAL`) and
//!   malformed or misdirected requests the servers must refuse.
//!
//! Sections that need other processes are skipped by the host tests, which run the rest
//! against the real server crates.

mod files;
mod guards;
mod limits;
mod memory;
mod pipes;
mod processes;
pub mod runs;
mod store;

use ankh_ulib::{Channel, Os};

use crate::check::Checker;
use crate::out::Out;
use crate::restart::Watched;

/// The directory the suite works in (made at the start, removed at the end).
pub const BASE: &str = "/suite";

/// Which sections to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sections {
    /// Sections that spawn processes (need PM and the kernel).
    pub processes: bool,
}

impl Sections {
    /// Everything (the `suite` image).
    pub const ALL: Sections = Sections { processes: true };
}

/// Runs the suite once; prints failures and the summary on `out`; returns the exit
/// code. Failures are attributed with the `ERESTART` answers `os`'s channel counts.
pub fn run<C: Channel>(os: &mut Os<Watched<C>>, out: &mut dyn Out, sections: Sections) -> u32 {
    let restarts = os.channel().counter();
    let mut check = Checker::watching(out, "suite", restarts);
    files::run(os, &mut check);
    pipes::run(os, &mut check);
    store::run(os, &mut check);
    memory::run(os, &mut check);
    guards::run(os, &mut check);
    limits::emfile(os, &mut check);
    if sections.processes {
        processes::run(os, &mut check);
        limits::enfile(os, &mut check);
    }
    check.summary()
}
