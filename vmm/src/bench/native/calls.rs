//! The native workloads that stay in one process: `syscall`, `pipe`, `fcopy-1k` and
//! `fcopy-4k`.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use super::{timed, During, NativeError};
use crate::bench::ubench::Workload;

/// Bytes per `pipe` operation (ubench's).
const PIPE_BYTES: usize = 512;

/// Bytes of the copies' source file (ubench's: copies wrap around to its start).
const COPY_SOURCE_SIZE: usize = 64 << 10;

/// `syscall`: `getpid` calls, as ubench's are `getpid` requests to PM. Made through
/// `syscall(2)` so that no C library can answer from a cache: each is a real entry
/// into the kernel and back.
pub(super) fn syscall(count: u64) -> Result<Workload, NativeError> {
    timed("syscall", count, |_| {
        // SAFETY: getpid takes no arguments, touches no memory and cannot fail.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) };
        std::hint::black_box(pid);
        Ok(())
    })
}

/// A pipe, both ends close-on-exec (no program another thread starts inherits them).
pub(super) fn pipe() -> io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: pipe2 succeeded: both are fresh descriptors that nothing else owns.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((File::from(read), File::from(write)))
}

/// `pipe`: 512 bytes written into a pipe and read back out, in one process: one
/// `write` and one `read` per operation, as in ubench.
pub(super) fn pipe_round_trips(count: u64) -> Result<Workload, NativeError> {
    let (mut read_end, mut write_end) = pipe().during("pipe", "pipe2")?;
    let out = [7u8; PIPE_BYTES];
    let mut back = [0u8; PIPE_BYTES];
    timed("pipe", count, |_| {
        // Below PIPE_BUF a pipe write is atomic and the read gets all of it.
        let written = write_end.write(&out).map_err(|e| ("write", e))?;
        let read = read_end.read(&mut back).map_err(|e| ("read", e))?;
        if written != PIPE_BYTES || read != PIPE_BYTES {
            return Err((
                "short transfer",
                io::Error::from(io::ErrorKind::UnexpectedEof),
            ));
        }
        Ok(())
    })
}

/// The two files of a copy, removed when dropped (also when a copy fails).
struct CopyFiles {
    source: PathBuf,
    target: PathBuf,
}

impl Drop for CopyFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.source);
        let _ = std::fs::remove_file(&self.target);
    }
}

/// `fcopy-1k` and `fcopy-4k`: `blocks` blocks of `block` bytes read from a 64 KiB
/// source file and written to a target file in `dir`, both rewound at the end of the
/// source; one operation is one block read and written, as in ubench. The source is
/// written before the timing starts, as ubench's is.
pub(super) fn copy(
    name: &'static str,
    dir: &Path,
    block: usize,
    blocks: u64,
) -> Result<Workload, NativeError> {
    let stem = format!("ankh-native-{}-{name}", std::process::id());
    let files = CopyFiles {
        source: dir.join(format!("{stem}.src")),
        target: dir.join(format!("{stem}.dst")),
    };
    std::fs::write(&files.source, vec![0x5au8; COPY_SOURCE_SIZE])
        .during(name, "create the source file")?;
    let mut source = File::open(&files.source).during(name, "open the source file")?;
    let mut target = File::create(&files.target).during(name, "create the target file")?;
    let mut buf = vec![0u8; block];
    timed(name, blocks, |_| {
        let mut n = source.read(&mut buf).map_err(|e| ("read", e))?;
        if n == 0 {
            source.seek(SeekFrom::Start(0)).map_err(|e| ("lseek", e))?;
            target.seek(SeekFrom::Start(0)).map_err(|e| ("lseek", e))?;
            n = source.read(&mut buf).map_err(|e| ("read", e))?;
        }
        target.write_all(&buf[..n]).map_err(|e| ("write", e))
    })
}
