//! Why a system description is rejected.

use std::path::{Path, PathBuf};

use crate::spec::{MAX_CALLEES, MAX_DOMAINS, MAX_MEMORY_MIB, MAX_THREADS, MIN_MEMORY_MIB};

/// Why a system description is rejected. Every message is one line; names from the
/// description are quoted and escaped.
///
/// Errors found in TOML text are wrapped in [`DescriptionError::AtLine`] when the
/// place is known, and errors from [`from_path`](crate::SystemDescription::from_path)
/// in [`DescriptionError::InFile`], so the message reads
/// `system.toml: line 12: domain "vfs" calls unknown domain "vsf"`.
/// [`DescriptionError::root`] strips both wrappers.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The file could not be read.
    #[error("cannot read system description {}", path.display())]
    Read {
        /// The path given.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// An error in the file `path`.
    #[error("{}: {error}", path.display())]
    InFile {
        /// The path given.
        path: PathBuf,
        /// What is wrong in it.
        error: Box<DescriptionError>,
    },
    /// An error at line `line` (1-based) of the TOML text.
    #[error("line {line}: {error}")]
    AtLine {
        /// 1-based line number.
        line: usize,
        /// What is wrong there.
        error: Box<DescriptionError>,
    },
    /// The text is not valid TOML, a value has the wrong type, a required field is
    /// missing or a field is unknown (the parser's message, on one line).
    #[error("line {line}, column {column}: {message}")]
    Syntax {
        /// 1-based line number.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// Like [`DescriptionError::Syntax`], when the parser gave no position.
    #[error("{message}")]
    Toml {
        /// The parser's message.
        message: String,
    },
    /// `threads` is 0 or more than [`MAX_THREADS`].
    #[error(
        "threads = {threads} is out of range: a system runs on 1..={MAX_THREADS} host threads"
    )]
    ThreadsOutOfRange {
        /// The value given.
        threads: usize,
    },
    /// A `message_rate` value is 0.
    #[error("message_rate.{field} = 0: it must be at least 1")]
    ZeroRate {
        /// `"per_second"` or `"burst"`.
        field: &'static str,
    },
    /// The description has no domain.
    #[error("the system has no domain: add at least one [[domain]] table")]
    NoDomains,
    /// More than [`MAX_DOMAINS`] domains.
    #[error("the system has {count} domains: at most {MAX_DOMAINS} are supported")]
    TooManyDomains {
        /// How many were given.
        count: usize,
    },
    /// A domain name is empty, too long, or has a character outside `a-z0-9-`.
    #[error("invalid domain name {name:?}: {reason}")]
    InvalidName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// More than one domain has the process-manager role.
    #[error("domain {name:?} is a second process-manager; a system has at most one")]
    SecondProcessManager {
        /// The second domain with that role.
        name: String,
    },
    /// More than one domain has `disk = true`.
    #[error("domains {first:?} and {second:?} both have disk = true; a system has at most one disk domain")]
    SecondDisk {
        /// The first domain with a disk.
        first: String,
        /// The second one.
        second: String,
    },
    /// Two domains have the same name.
    #[error("two domains are named {name:?}")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// The image of a domain is neither a built-in image nor an existing file.
    #[error("domain {domain:?} boots unknown image {image:?} (neither a built-in image nor an existing file)")]
    UnknownImage {
        /// The domain.
        domain: String,
        /// The image given.
        image: String,
    },
    /// A domain's memory is outside [`MIN_MEMORY_MIB`]..=[`MAX_MEMORY_MIB`].
    #[error("domain {domain:?} has memory_mib = {memory_mib}: it must be {MIN_MEMORY_MIB}..={MAX_MEMORY_MIB}")]
    MemoryOutOfRange {
        /// The domain.
        domain: String,
        /// The value given.
        memory_mib: u64,
    },
    /// A domain's host thread index is not below the system's `threads`.
    #[error("domain {domain:?} runs on thread {thread}, but the system has threads = {threads} (valid: 0..={})", threads.saturating_sub(1))]
    ThreadOutOfRange {
        /// The domain.
        domain: String,
        /// The index given.
        thread: usize,
        /// The system's thread count.
        threads: usize,
    },
    /// A domain calls more than [`MAX_CALLEES`] domains.
    #[error("domain {domain:?} calls {count} domains: at most {MAX_CALLEES} (the boot info lists at most that many peers)")]
    TooManyCallees {
        /// The domain.
        domain: String,
        /// How many it lists.
        count: usize,
    },
    /// A domain calls a name no domain has.
    #[error("domain {domain:?} calls unknown domain {callee:?}")]
    UnknownCallee {
        /// The caller.
        domain: String,
        /// The name it lists.
        callee: String,
    },
    /// A domain lists itself in its `calls`.
    #[error("domain {domain:?} calls itself")]
    SelfCall {
        /// The domain.
        domain: String,
    },
    /// A domain lists the same callee twice.
    #[error("domain {domain:?} lists {callee:?} twice in calls")]
    DuplicateCallee {
        /// The caller.
        domain: String,
        /// The name listed twice.
        callee: String,
    },
    /// The call graph has a cycle, so synchronous calls could deadlock.
    #[error("the call graph has a cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The domains on the cycle, the first repeated at the end: `[a, b, c, a]`.
        cycle: Vec<String>,
    },
}

impl DescriptionError {
    /// The error itself, without the [`DescriptionError::InFile`] and
    /// [`DescriptionError::AtLine`] wrappers that say where it is.
    pub fn root(&self) -> &DescriptionError {
        match self {
            DescriptionError::InFile { error, .. } | DescriptionError::AtLine { error, .. } => {
                error.root()
            }
            other => other,
        }
    }

    /// The 1-based line of the TOML text the error is at, when known.
    pub fn line(&self) -> Option<usize> {
        match self {
            DescriptionError::InFile { error, .. } => error.line(),
            DescriptionError::AtLine { line, .. } | DescriptionError::Syntax { line, .. } => {
                Some(*line)
            }
            _ => None,
        }
    }

    /// The file the error is in, when the description was read from one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            DescriptionError::InFile { path, .. } | DescriptionError::Read { path, .. } => {
                Some(path)
            }
            _ => None,
        }
    }
}
