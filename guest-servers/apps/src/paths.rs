//! Conventions between the programs: file names, exit codes.

/// The file init reads its jobs from: program paths (e.g. `/bin/suite`), one per line,
/// run in order. The VMM writes it into the root file system (`ankh up --run`).
pub const INIT_JOB_PATH: &str = "/etc/init.job";

/// Most bytes of [`INIT_JOB_PATH`] init reads.
pub const JOBS_FILE_MAX: usize = 4096;

/// What init runs when [`INIT_JOB_PATH`] does not exist (`ENOENT`) or lists no job.
pub const DEFAULT_JOB: &str = "/bin/hello-os";

/// Longest job path init accepts from [`INIT_JOB_PATH`] (`PATH_MAX`).
pub const JOB_MAX: usize = 255;

/// init's exit code for a job that ended by a fault or a kill: this plus the
/// `WaitStatus::cause` (`EXIT_FAULT` 1, `EXIT_KILLED` 2), like a shell's `128 + signal`.
pub const SIGNALED_BASE: u32 = 128;

/// init's exit code when it cannot read its job file, or start or wait for a job.
pub const INIT_FAILED: u32 = 127;

/// Echoes its input pipe into its output pipe until end of file (see
/// [`crate::helpers::pipe_child`]).
pub const PIPE_CHILD: &str = "/bin/pipe-child";
/// Exits with the number of its arguments if they are [`CHILD_ARGS_ARGV`].
pub const CHILD_ARGS: &str = "/bin/child-args";
/// The argument list the suite gives [`CHILD_ARGS`].
pub const CHILD_ARGS_ARGV: [&str; 3] = ["child-args", "one", "two words"];

/// Exits with [`CHILD_EXIT3_CODE`] at once.
pub const CHILD_EXIT3: &str = "/bin/child-exit3";
/// Exit code of [`CHILD_EXIT3`].
pub const CHILD_EXIT3_CODE: i32 = 3;
/// Executes `ud2` (an invalid-opcode fault: its parent's `wait` says `EXIT_FAULT`).
pub const CHILD_UD2: &str = "/bin/child-ud2";
/// Blocks forever in a read of a pipe it holds both ends of (to be killed).
pub const CHILD_SLEEP: &str = "/bin/child-sleep";
/// Opens files until VFS refuses, reports the errno and blocks (see
/// [`crate::helpers::hog`]).
pub const CHILD_HOG: &str = "/bin/child-hog";
/// Waits on a DS subscription and acknowledges it (see
/// [`crate::helpers::subscriber`]).
pub const CHILD_SUBSCRIBE: &str = "/bin/child-subscribe";

/// `pipe-child` exit codes: 0 after echoing everything until end of file;
/// these otherwise.
pub mod pipe_child {
    /// The parent published no (or malformed) arguments.
    pub const NO_ARGS: u32 = 2;
    /// A read of the input pipe failed (e.g. `EBADF`: the descriptors were not
    /// inherited).
    pub const READ_FAILED: u32 = 3;
    /// A write to the output pipe failed.
    pub const WRITE_FAILED: u32 = 4;
}

/// The DS prefix `child-subscribe` subscribes to.
pub const SUBSCRIBE_PREFIX: &str = "suite.sub.";
/// The DS key `child-subscribe` publishes, with the key it was woken for as value.
pub const SUBSCRIBE_ACK: &str = "suite.ack";
