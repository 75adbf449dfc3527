//! One entry of the process table.
//!
//! Lifecycle: an entry is made `Running` (by `PM_SPAWN`, or when an unknown caller
//! spawns, or for init at start); `SYS_DOMAIN_EXITED` makes it a `Zombie` holding
//! its exit status; it is removed (reaped) when its parent's `PM_WAIT` collects that
//! status, or right away when nobody will: it has no parent, it is detached, or it
//! is an orphan init adopted (unless init's parked wait collects it).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ankh_proto::pm::{STATE_RUNNING, STATE_ZOMBIE};
use ankh_proto::Pid;

/// Whether a process runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Its domain runs.
    Running,
    /// Its domain stopped; the status waits for the parent.
    Zombie {
        /// Exit code (`sys::EXIT_NORMAL`).
        code: i32,
        /// `sys::EXIT_*`.
        cause: u32,
    },
}

/// A `PM_WAIT` parked until a matching child ends.
#[derive(Clone, Copy)]
pub(crate) struct ParkedWait {
    /// The request to answer.
    pub(crate) request_id: u64,
    /// The child waited for, or -1 for any.
    pub(crate) target: i32,
}

/// A process.
pub(crate) struct Proc {
    /// Its parent, 0 for none.
    pub(crate) ppid: Pid,
    /// The session it belongs to (`pm::SESSION_PROCS_MAX`): the pid of its ancestor
    /// that init started, or its own when init started it or PM did not spawn it.
    /// Kept when it is orphaned.
    pub(crate) session: Pid,
    /// Running or zombie.
    pub(crate) state: State,
    /// `arg0, arg1, ...` as spawned.
    pub(crate) args: Vec<String>,
    /// Its parked `PM_WAIT`, if any (a process waits for one thing at a time).
    pub(crate) wait: Option<ParkedWait>,
    /// Its spawn failed after its domain was made: the spawner got an error, not
    /// its pid, so nobody waits for it and it is reaped when it ends.
    pub(crate) detached: bool,
    /// Its parent ended and init adopted it: reaped as soon as it ends, unless a
    /// parked wait of init's matches it then.
    pub(crate) adopted: bool,
}

impl Proc {
    /// A running process.
    pub(crate) fn new(ppid: Pid, session: Pid, args: Vec<String>) -> Proc {
        Proc {
            ppid,
            session,
            state: State::Running,
            args,
            wait: None,
            detached: false,
            adopted: false,
        }
    }

    /// A running process with the arguments of a spawn list.
    pub(crate) fn spawned(ppid: Pid, session: Pid, args: &[&str]) -> Proc {
        Proc::new(ppid, session, args.iter().map(|a| a.to_string()).collect())
    }

    /// True while its domain runs.
    pub(crate) fn is_running(&self) -> bool {
        self.state == State::Running
    }

    /// `STATE_RUNNING` or `STATE_ZOMBIE`.
    pub(crate) fn state_code(&self) -> u32 {
        match self.state {
            State::Running => STATE_RUNNING,
            State::Zombie { .. } => STATE_ZOMBIE,
        }
    }

    /// True when `parent` may wait for this process (as `pid`) with `target`.
    pub(crate) fn is_waitable_by(&self, pid: Pid, parent: Pid, target: i32) -> bool {
        self.ppid == parent
            && !self.detached
            && (target == -1 || u32::try_from(target).is_ok_and(|t| t == pid))
    }
}
