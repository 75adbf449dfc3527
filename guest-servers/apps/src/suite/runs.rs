//! `suite --runs N`: the suite N times in a row in one system, each run after the
//! first from a clean slate (`ankh demo` runs it twice: under hot-kills, then after
//! the last recovery).
//!
//! Before each run, when N > 1: `suite: run K of N`. Before each run after the first,
//! what the previous runs left behind is removed (a run that failed midway leaves its
//! files, DS keys, descriptors and children) and counted in one line:
//! `suite: run K starts clean: removed F files, D DS keys, C descriptors, P processes`
//! (a call that fails meanwhile gets a line of its own). These are not checks: the
//! runs' results are only their own `N passed, M failed` lines.

use alloc::string::String;
use alloc::vec::Vec;

use ankh_proto::vfs::{KIND_DIR, OPEN_MAX};
use ankh_ulib::{Channel, Errno, Fd, Os};

use super::{Sections, BASE};
use crate::out::{Out, Text};
use crate::restart::{retry_restarted, Watched};

/// Most runs `--runs` accepts: enough for a kill storm to last on the process build,
/// which runs the suite nine times in well under a second.
pub const RUNS_MAX: u64 = 99;

/// The suite's exit code for arguments it does not understand (or cannot read).
pub const BAD_ARGUMENTS: u32 = 2;

/// The DS keys the suite and its helpers use all start with this.
const KEY_PREFIX: &str = "suite.";

/// Deepest directory under [`BASE`] the clean-up descends into.
const DEPTH_MAX: usize = 8;

/// The runs asked for by the arguments after the program's name: none for one run,
/// `--runs N` for N (1 to [`RUNS_MAX`]); `None` for anything else.
pub fn parse_runs<S: AsRef<str>>(args: &[S]) -> Option<u64> {
    match args {
        [] => Some(1),
        [flag, count] if flag.as_ref() == "--runs" => count
            .as_ref()
            .parse()
            .ok()
            .filter(|runs| (1..=RUNS_MAX).contains(runs)),
        _ => None,
    }
}

/// The `suite` image: reads its arguments, runs the suite as often as they say, and
/// returns 0 iff every run passed ([`BAD_ARGUMENTS`] for bad arguments).
pub fn main<C: Channel>(os: &mut Os<Watched<C>>, out: &mut dyn Out) -> u32 {
    let args = match retry_restarted(|| os.args()) {
        Ok(args) => args,
        Err(errno) => {
            Text::new()
                .str("suite: cannot read its arguments errno ")
                .int(errno.into())
                .send(out);
            return BAD_ARGUMENTS;
        }
    };
    let Some(runs) = parse_runs(args.get(1..).unwrap_or_default()) else {
        Text::new()
            .str("suite: usage: suite [--runs N], N from 1 to ")
            .dec(RUNS_MAX)
            .send(out);
        return BAD_ARGUMENTS;
    };
    let mut code = 0;
    for run in 1..=runs {
        if runs > 1 {
            Text::new()
                .str("suite: run ")
                .dec(run)
                .str(" of ")
                .dec(runs)
                .send(out);
        }
        if run > 1 {
            clean_up(os, out, run);
        }
        if super::run(os, out, Sections::ALL) != 0 {
            code = 1;
        }
    }
    code
}

/// What [`clean_up`] removed.
#[derive(Debug, Default)]
struct Removed {
    files: u64,
    keys: u64,
    descriptors: u64,
    processes: u64,
}

/// Removes what earlier runs left: children, descriptors, files under [`BASE`], DS
/// keys under [`KEY_PREFIX`]; prints what it removed.
pub(crate) fn clean_up<C: Channel>(os: &mut Os<C>, out: &mut dyn Out, run: u64) {
    let mut removed = Removed::default();
    let mut report = |what: &str, errno: Errno| {
        Text::new()
            .str("suite: clean-up: ")
            .str(what)
            .str(" errno ")
            .int(errno.into())
            .send(out);
    };
    match retry_restarted(|| os.getpid()).and_then(|me| Ok((me, retry_restarted(|| os.ps())?))) {
        Ok((me, table)) => {
            for child in table.iter().filter(|entry| entry.ppid == me) {
                // A zombie cannot be killed, only waited for.
                let _ = os.kill(child.pid);
                match retry_restarted(|| os.wait(child.pid)) {
                    Ok(_) => removed.processes += 1,
                    Err(errno) => report("wait for a child", errno),
                }
            }
        }
        Err(errno) => report("list processes", errno),
    }
    for fd in 0..OPEN_MAX {
        let Ok(fd) = Fd::try_from(fd) else { break };
        if os.close(fd).is_ok() {
            removed.descriptors += 1;
        }
    }
    if let Err(errno) = remove_tree(os, BASE, DEPTH_MAX, &mut removed.files) {
        report("remove the suite's directory", errno);
    }
    match retry_restarted(|| os.ds_list(KEY_PREFIX)) {
        Ok(keys) => {
            for key in keys {
                match retry_restarted(|| os.ds_delete(&key)) {
                    Ok(()) => removed.keys += 1,
                    Err(errno) => report("delete a DS key", errno),
                }
            }
        }
        Err(errno) => report("list DS keys", errno),
    }
    Text::new()
        .str("suite: run ")
        .dec(run)
        .str(" starts clean: removed ")
        .dec(removed.files)
        .str(" files, ")
        .dec(removed.keys)
        .str(" DS keys, ")
        .dec(removed.descriptors)
        .str(" descriptors, ")
        .dec(removed.processes)
        .str(" processes")
        .send(out);
}

/// Removes `path` and everything under it (`depth` levels at most), counting what it
/// removed in `files`; a missing `path` is fine.
fn remove_tree<C: Channel>(
    os: &mut Os<C>,
    path: &str,
    depth: usize,
    files: &mut u64,
) -> Result<(), Errno> {
    let stat = match retry_restarted(|| os.stat(path)) {
        Err(ankh_ulib::errno::ENOENT) => return Ok(()),
        other => other?,
    };
    if stat.kind == KIND_DIR {
        if depth == 0 {
            return Err(ankh_ulib::errno::ENAMETOOLONG);
        }
        let names: Vec<String> = retry_restarted(|| os.readdir(path))?;
        for name in names.iter().filter(|n| *n != "." && *n != "..") {
            let mut child = String::from(path);
            child.push('/');
            child.push_str(name);
            remove_tree(os, &child, depth - 1, files)?;
        }
        retry_restarted(|| os.rmdir(path))?;
    } else {
        retry_restarted(|| os.unlink(path))?;
    }
    *files += 1;
    Ok(())
}
