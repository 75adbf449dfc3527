//! `init`: the first process. Prints `init: starting`, starts all its jobs side by side
//! (in the order listed), waits for each in that order, printing
//! `init: <job> exited with <code>`, and returns 0 when every job returned 0, else the
//! last non-zero code.
//!
//! The jobs are the programs listed in [`INIT_JOB_PATH`], one per line, each a path
//! then its arguments (e.g. `/bin/suite --runs 2`). Only `ENOENT` means "no job file":
//! then (or with no path in it) init runs [`DEFAULT_JOB`]. Reading it again is the
//! answer to `ERESTART` (VFS was rolled back mid-request and did nothing), at most
//! [`crate::restart::RESTART_ATTEMPTS`] times; any other error ends init at once with [`INIT_FAILED`]
//! and the line `init: cannot read /etc/init.job errno <n>`: init never guesses which
//! programs to run. Spawning and waiting are retried on `ERESTART` the same way.
//!
//! A job that ends by a fault or a kill counts as `SIGNALED_BASE + cause` (129 for a
//! fault, 130 for a kill, like a shell's `128 + signal`), and its line says so:
//! `init: <job> exited with 129 (fault)`. A job that cannot be started or waited for
//! counts as [`INIT_FAILED`].

use alloc::vec::Vec;

use ankh_proto::sys::{EXIT_FAULT, EXIT_KILLED, EXIT_NORMAL};
use ankh_ulib::errno::ENOENT;
use ankh_ulib::{Channel, Errno, Os, Pid};

use crate::out::{Out, Text};
use crate::paths::{
    DEFAULT_JOB, INIT_FAILED, INIT_JOB_PATH, JOBS_FILE_MAX, JOB_MAX, SIGNALED_BASE,
};
use crate::restart::retry_restarted;

/// The jobs listed in the contents of [`INIT_JOB_PATH`]: the words of each line, the
/// program first, if it is an absolute path of at most [`JOB_MAX`] bytes (other lines
/// are skipped); the rest are its arguments. Empty when the contents are not UTF-8.
pub fn parse_jobs(contents: &[u8]) -> Vec<Vec<&str>> {
    let Ok(text) = core::str::from_utf8(contents) else {
        return Vec::new();
    };
    text.lines()
        .map(|line| line.split_whitespace().collect::<Vec<&str>>())
        .filter(|words| {
            words
                .first()
                .is_some_and(|job| job.starts_with('/') && job.len() <= JOB_MAX)
        })
        .collect()
}

/// The contents of [`INIT_JOB_PATH`]: empty when it does not exist (`ENOENT`), the
/// error otherwise.
fn read_jobs_file<C: Channel>(os: &mut Os<C>) -> Result<Vec<u8>, Errno> {
    match retry_restarted(|| os.read_file(INIT_JOB_PATH, JOBS_FILE_MAX)) {
        Err(ENOENT) => Ok(Vec::new()),
        other => other,
    }
}

/// Runs init; returns its exit code.
pub fn run<C: Channel>(os: &mut Os<C>, out: &mut dyn Out) -> u32 {
    Text::new().str("init: starting").send(out);
    let contents = match read_jobs_file(os) {
        Ok(contents) => contents,
        Err(errno) => {
            Text::new()
                .str("init: cannot read ")
                .str(INIT_JOB_PATH)
                .str(" errno ")
                .int(errno.into())
                .send(out);
            return INIT_FAILED;
        }
    };
    let mut jobs = parse_jobs(&contents);
    if jobs.is_empty() {
        jobs.push(alloc::vec![DEFAULT_JOB]);
    }
    let started: Vec<(&str, Option<Pid>)> = jobs
        .iter()
        .map(|words| (words[0], start_job(os, out, words)))
        .collect();
    let mut code = 0;
    for (job, pid) in started {
        let status = match pid {
            Some(pid) => finish_job(os, out, job, pid),
            None => INIT_FAILED,
        };
        if status != 0 {
            code = status;
        }
    }
    // Orphan reaping goes here once PM hands orphans to init: wait for any child
    // that is not one of the jobs (`wait_any`) until `ECHILD`, and report each.
    code
}

/// Starts one job (its program, then its arguments); its pid, or `None` (reported)
/// when it cannot be started.
fn start_job<C: Channel>(os: &mut Os<C>, out: &mut dyn Out, words: &[&str]) -> Option<Pid> {
    let job = words[0];
    match retry_restarted(|| os.spawn(job, words, false)) {
        Ok(pid) => Some(pid),
        Err(errno) => {
            let line = Text::new()
                .str("init: cannot start ")
                .str(job)
                .str(" errno ");
            line.int(errno.into()).send(out);
            None
        }
    }
}

/// Waits for the job `pid` and reports how it ended; returns its code as init counts
/// it.
fn finish_job<C: Channel>(os: &mut Os<C>, out: &mut dyn Out, job: &str, pid: Pid) -> u32 {
    let (code, how) = match retry_restarted(|| os.wait(pid)) {
        Ok(status) if status.cause == EXIT_NORMAL => {
            (u32::from_le_bytes(status.code.to_le_bytes()), "")
        }
        Ok(status) => {
            let how = match status.cause {
                EXIT_FAULT => " (fault)",
                EXIT_KILLED => " (killed)",
                _ => " (abnormal end)",
            };
            (SIGNALED_BASE.saturating_add(status.cause), how)
        }
        Err(errno) => {
            let line = Text::new()
                .str("init: cannot wait for ")
                .str(job)
                .str(" errno ");
            line.int(errno.into()).send(out);
            return INIT_FAILED;
        }
    };
    Text::new()
        .str("init: ")
        .str(job)
        .str(" exited with ")
        .dec(code.into())
        .str(how)
        .send(out);
    code
}
