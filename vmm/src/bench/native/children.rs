//! The native workloads with a second process: `context1`, `spawn`, `execl` and
//! `ds-lookup`.
//!
//! Children are made with `fork`. The benchmark may run in a process with other
//! threads (the test harness, a future `ankh bench compare`), so between `fork` and
//! `_exit` a child only makes async-signal-safe calls (`read`, `write`, `send`,
//! `recv`, `close`, `fexecve`, `_exit`) on memory prepared before the fork: it never
//! allocates or takes a lock another thread might have held.

use std::collections::HashMap;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;

use super::calls::pipe;
use super::tiny_exe::{TinyExe, EXIT_CODE};
use super::{timed, During, NativeError, OpResult};
use crate::bench::ubench::Workload;

/// The key `ds-lookup` retrieves and its value (ubench's).
const DS_KEY: &str = "ubench.key";
const DS_VALUE: &str = "value";

/// Exit code of a forked child whose `fexecve` failed.
const EXEC_FAILED: i32 = 127;

/// A forked child; killed and reaped if dropped before [`Child::wait`] (when a workload
/// fails half-way), so no benchmark leaves a process behind.
struct Child {
    pid: libc::pid_t,
}

impl Child {
    /// Forks; the child runs `body` and exits with the code it returns.
    ///
    /// # Safety
    /// `body` must only make async-signal-safe calls, must not allocate, and must not
    /// panic (see the module's doc).
    unsafe fn fork(body: impl FnOnce() -> i32) -> io::Result<Child> {
        // SAFETY: the child runs only `body`, which the caller guarantees is
        // async-signal-safe, then `_exit`s without running destructors or atexit
        // handlers of the parent's state.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                let code = body();
                // SAFETY: ends the child at once; nothing of the parent is flushed.
                unsafe { libc::_exit(code) }
            }
            pid => Ok(Child { pid }),
        }
    }

    /// Waits for the child; its exit code (an error if a signal ended it).
    fn wait(self) -> io::Result<i32> {
        let pid = self.pid;
        std::mem::forget(self);
        let status = reap(pid)?;
        if libc::WIFEXITED(status) {
            Ok(libc::WEXITSTATUS(status))
        } else {
            Err(io::Error::other(format!(
                "child ended by signal {}",
                libc::WTERMSIG(status)
            )))
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // SAFETY: `pid` is our child, not yet reaped, so the pid cannot be reused.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = reap(self.pid);
    }
}

/// `waitpid` for `pid`, retried when a signal interrupts it; the wait status.
fn reap(pid: libc::pid_t) -> io::Result<i32> {
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid place for waitpid to write to.
        if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
            return Ok(status);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Fails unless a child exited with `expected`.
fn expect_exit(code: i32, expected: i32) -> OpResult {
    if code == expected {
        return Ok(());
    }
    let err = io::Error::other(format!("child exited with {code}, not {expected}"));
    Err(("wait", err))
}

/// `spawn`: fork a child that exits with code 3 at once, and wait for it (Unixbench's
/// spawn: the cost of a process, without loading a program).
pub(super) fn spawn(count: u64) -> Result<Workload, NativeError> {
    timed("spawn", count, |_| {
        // SAFETY: the child's body makes no call at all.
        let child = unsafe { Child::fork(|| EXIT_CODE) }.map_err(|e| ("fork", e))?;
        expect_exit(child.wait().map_err(|e| ("wait", e))?, EXIT_CODE)
    })
}

/// `execl`: fork a child that executes a tiny static program exiting with code 3, and
/// wait for it (Unixbench's execl). This is what Ankh's `spawn` does: a new process
/// from a program file.
pub(super) fn execl(count: u64) -> Result<Workload, NativeError> {
    let program = TinyExe::create().during("execl", "write the program to execute")?;
    let fd = program.fd();
    let name: &CStr = c"child-exit3";
    let argv = [name.as_ptr(), ptr::null()];
    let envp = [ptr::null()];
    timed("execl", count, |_| {
        // SAFETY: fexecve and _exit are async-signal-safe; `argv` and `envp` are
        // NULL-terminated arrays of NUL-terminated strings made before the fork.
        let child = unsafe {
            Child::fork(|| {
                libc::fexecve(fd, argv.as_ptr(), envp.as_ptr());
                EXEC_FAILED
            })
        }
        .map_err(|e| ("fork", e))?;
        // 3 and only 3 says the program ran: a failed exec exits with 127.
        expect_exit(child.wait().map_err(|e| ("wait", e))?, EXIT_CODE)
    })
}

/// Echoes bytes from `from` to `to` until end of file or an error; the child side of
/// `context1`. Async-signal-safe.
fn echo(from: i32, to: i32) -> i32 {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads at most one byte into `byte`.
        let n = unsafe { libc::read(from, (&raw mut byte).cast(), 1) };
        if n == 0 {
            return 0;
        }
        if n < 0 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return 1;
        }
        // SAFETY: writes the one byte read.
        if unsafe { libc::write(to, (&raw const byte).cast(), 1) } != 1 {
            return 1;
        }
    }
}

/// `context1`: a byte written to a child through one pipe and read back through
/// another, the child echoing it: two context switches per operation, as with
/// ubench's `pipe-child`. The child is started before the timing starts.
pub(super) fn context(count: u64) -> Result<Workload, NativeError> {
    use std::io::{Read, Write};
    let (child_in, mut to_child) = pipe().during("context1", "pipe2")?;
    let (mut from_child, child_out) = pipe().during("context1", "pipe2")?;
    let (theirs_in, theirs_out) = (child_in.as_raw_fd(), child_out.as_raw_fd());
    let (ours_to, ours_from) = (to_child.as_raw_fd(), from_child.as_raw_fd());
    // SAFETY: `echo` and `close` are async-signal-safe. The child closes our ends so
    // that it sees end of file when we close ours.
    let child = unsafe {
        Child::fork(|| {
            libc::close(ours_to);
            libc::close(ours_from);
            echo(theirs_in, theirs_out)
        })
    }
    .during("context1", "fork")?;
    drop((child_in, child_out));
    let workload = timed("context1", count, |i| {
        let byte = [i.to_le_bytes()[0]];
        to_child.write_all(&byte).map_err(|e| ("write", e))?;
        let mut back = [0u8; 1];
        from_child.read_exact(&mut back).map_err(|e| ("read", e))?;
        if back != byte {
            return Err(("echo", io::Error::other("the child echoed another byte")));
        }
        Ok(())
    })?;
    drop(to_child);
    let code = child.wait().during("context1", "wait")?;
    expect_exit(code, 0).map_err(|(step, e)| NativeError::failed("context1", step, e))?;
    Ok(workload)
}

/// A `SOCK_SEQPACKET` Unix socket pair, close-on-exec: one message per `send`, as
/// Ankh's requests and replies are messages.
fn socket_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    let kind = libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC;
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    if unsafe { libc::socketpair(libc::AF_UNIX, kind, 0, fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: socketpair succeeded: both are fresh descriptors nothing else owns.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The data-store server: answers each key received on `socket` with its value in
/// `store` (an empty message when unset) until end of file. Async-signal-safe:
/// looking up a `&str` in a map built before the fork reads memory and allocates
/// nothing.
fn serve_store(socket: i32, store: &HashMap<String, String>) -> i32 {
    let mut key = [0u8; 256];
    loop {
        // SAFETY: receives at most `key.len()` bytes into `key`.
        let n = unsafe { libc::recv(socket, key.as_mut_ptr().cast(), key.len(), 0) };
        let Ok(n) = usize::try_from(n) else {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return 1;
        };
        if n == 0 {
            return 0;
        }
        let value = std::str::from_utf8(&key[..n.min(key.len())])
            .ok()
            .and_then(|key| store.get(key))
            .map_or(&[][..], |value| value.as_bytes());
        // SAFETY: sends the `value.len()` bytes of `value`.
        if unsafe { libc::send(socket, value.as_ptr().cast(), value.len(), 0) } < 0 {
            return 1;
        }
    }
}

/// `ds-lookup`: a key sent to a data-store server process over a Unix socket and its
/// value received back, one round trip per operation, as ubench's are DS retrieves
/// (requests to the DS server domain). Linux has no data store in its kernel; a
/// program there asks a daemon over a Unix socket (as nscd, D-Bus or varlink clients
/// do), which is the same work the microkernel's server does: two switches, two
/// copies and a map lookup. The key is published before the timing starts.
pub(super) fn ds_lookup(count: u64) -> Result<Workload, NativeError> {
    let store = HashMap::from([(DS_KEY.to_owned(), DS_VALUE.to_owned())]);
    let (ours, theirs) = socket_pair().during("ds-lookup", "socketpair")?;
    let (our_fd, their_fd) = (ours.as_raw_fd(), theirs.as_raw_fd());
    // SAFETY: `serve_store` and `close` are async-signal-safe (see them).
    let server = unsafe {
        Child::fork(|| {
            libc::close(our_fd);
            serve_store(their_fd, &store)
        })
    }
    .during("ds-lookup", "fork")?;
    drop(theirs);
    let mut reply = [0u8; 256];
    let workload = timed("ds-lookup", count, |_| {
        // SAFETY: sends the bytes of DS_KEY.
        let sent = unsafe { libc::send(our_fd, DS_KEY.as_ptr().cast(), DS_KEY.len(), 0) };
        if sent < 0 {
            return Err(("send", io::Error::last_os_error()));
        }
        // SAFETY: receives at most `reply.len()` bytes into `reply`.
        let n = unsafe { libc::recv(our_fd, reply.as_mut_ptr().cast(), reply.len(), 0) };
        let n = usize::try_from(n).map_err(|_| ("recv", io::Error::last_os_error()))?;
        if &reply[..n.min(reply.len())] != DS_VALUE.as_bytes() {
            return Err((
                "reply",
                io::Error::other("the server answered another value"),
            ));
        }
        Ok(())
    })?;
    drop(ours);
    let code = server.wait().during("ds-lookup", "wait")?;
    expect_exit(code, 0).map_err(|(step, e)| NativeError::failed("ds-lookup", step, e))?;
    Ok(workload)
}
