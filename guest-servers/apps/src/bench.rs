//! `ubench`: Unixbench-style workloads, each a fixed number of operations.
//!
//! The guest has no clock, so the host times the workloads. The protocol:
//! 1. before a workload's first operation the guest makes a `Nop` hypercall;
//! 2. after its last operation it makes another `Nop`;
//! 3. then it prints `ubench: <name> <count>`: `count` operations ran between the two.
//!
//! So the `k`-th pair of `Nop`s belongs to the `k`-th `ubench:` line, and the VMM (which
//! sees every hypercall) computes operations per second as `count / (t_end - t_start)`;
//! report them as ratios against a baseline measured in the same run (e.g. the raw exit
//! cost), as docs/host.md explains. The guest makes no other `Nop` hypercall, and
//! setup (creating the source file, spawning the ping-pong partner) happens outside the
//! pairs. A workload that fails prints `ubench: <name> failed errno <e>` instead and is
//! not counted; the program then returns 1.
//!
//! Workloads (Unixbench's names in parentheses):
//! - `syscall` (syscall): `getpid` calls;
//! - `pipe` (pipe): 512-byte write + read on a pipe within the process;
//! - `context1` (context1): one byte bounced between the process and a `pipe-child`
//!   over two pipes, i.e. two context switches per operation;
//! - `spawn` (spawn): spawn of `child-exit3` and wait for it;
//! - `execl` (execl): the same operation. Ankh has no `exec`: every program starts as a
//!   fresh image in a fresh domain, which is exactly what `spawn` measures; the line is
//!   kept so that result tables line up with Unixbench's;
//! - `fcopy-1k`, `fcopy-4k` (fstime): file copy with 1 KiB and 4 KiB buffers, one
//!   operation = one block read and written;
//! - `ds-lookup`: DS retrieves of one key.

use alloc::vec;

use ankh_ulib::vfs::{O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, SEEK_SET};
use ankh_ulib::{Channel, Errno, Fd, Os};

use crate::out::{Out, Text};
use crate::paths::{CHILD_EXIT3, PIPE_CHILD};
pub use crate::workloads::{Budget, WORKLOADS};

/// The source file of the copies.
const COPY_SOURCE: &str = "/ubench-src";
/// The destination file of the copies.
const COPY_TARGET: &str = "/ubench-dst";
/// Bytes of the source file (64 KiB: copies wrap around to its start).
const COPY_SOURCE_SIZE: usize = 64 << 10;
/// The DS key of `ds-lookup`.
const DS_KEY: &str = "ubench.key";

/// What the workloads need besides the OS: the timestamp marks and the output.
pub struct Bench<'a, C: Channel> {
    /// The OS.
    pub os: &'a mut Os<C>,
    /// Makes the `Nop` hypercall that delimits a workload.
    pub mark: &'a mut dyn FnMut(),
    /// Where the result lines go.
    pub out: &'a mut dyn Out,
    /// Whether workloads that spawn processes run (not in host tests).
    pub processes: bool,
}

impl<C: Channel> Bench<'_, C> {
    /// Runs the workloads named in `only`, in that order (a name may repeat: a
    /// warm-up run), or every workload when it is empty, with `budget`; returns 0 iff
    /// all of them worked. An unknown name fails.
    pub fn run<S: AsRef<str>>(&mut self, budget: &Budget, only: &[S]) -> u32 {
        let mut failed = false;
        if only.is_empty() {
            for name in WORKLOADS {
                failed |= !self.workload(budget, name);
            }
        }
        for name in only {
            failed |= !self.workload(budget, name.as_ref());
        }
        u32::from(failed)
    }

    /// Runs the workload `name`; whether it worked. Workloads that spawn processes
    /// are skipped (and count as working) without `processes`.
    fn workload(&mut self, budget: &Budget, name: &str) -> bool {
        match name {
            "syscall" => self.timed(name, budget.syscall, |os, _| os.getpid().map(drop)),
            "pipe" => self.pipe(budget.pipe),
            "context1" | "spawn" | "execl" if !self.processes => true,
            "context1" => self.context(budget.context),
            "spawn" | "execl" => self.timed(name, budget.spawn, spawn_wait),
            "fcopy-1k" => self.copy(name, 1024, budget.copy_blocks),
            "fcopy-4k" => self.copy(name, 4096, budget.copy_blocks),
            "ds-lookup" => self.ds(budget.ds),
            _ => {
                Text::new()
                    .str("ubench: ")
                    .str(name)
                    .str(" is not a workload")
                    .send(self.out);
                false
            }
        }
    }

    /// Runs `op` `count` times between two marks and prints the result line; returns
    /// whether every operation worked.
    fn timed(
        &mut self,
        name: &str,
        count: u64,
        mut op: impl FnMut(&mut Os<C>, u64) -> Result<(), Errno>,
    ) -> bool {
        (self.mark)();
        let mut result = Ok(());
        for i in 0..count {
            result = op(self.os, i);
            if result.is_err() {
                break;
            }
        }
        (self.mark)();
        self.report(name, count, result)
    }

    /// Prints `ubench: <name> <count>` or the failure line.
    fn report(&mut self, name: &str, count: u64, result: Result<(), Errno>) -> bool {
        let line = Text::new().str("ubench: ").str(name).str(" ");
        match result {
            Ok(()) => line.dec(count).send(self.out),
            Err(errno) => line.str("failed errno ").int(errno.into()).send(self.out),
        }
        result.is_ok()
    }

    /// Prints the failure line of a workload whose setup failed.
    fn setup_failed(&mut self, name: &str, errno: Errno) -> bool {
        self.report(name, 0, Err(errno))
    }

    /// `pipe`: 512 bytes through a pipe and back out.
    fn pipe(&mut self, count: u64) -> bool {
        let (r, w) = match self.os.pipe() {
            Ok(fds) => fds,
            Err(errno) => return self.setup_failed("pipe", errno),
        };
        let mut buf = [0u8; 512];
        let ok = self.timed("pipe", count, |os, _| {
            os.write(w, &[7u8; 512])?;
            os.read(r, &mut buf).map(drop)
        });
        let _ = self.os.close(r);
        let _ = self.os.close(w);
        ok
    }

    /// `context1`: a byte to a `pipe-child` and back.
    fn context(&mut self, count: u64) -> bool {
        let partner = match start_partner(self.os) {
            Ok(partner) => partner,
            Err(errno) => return self.setup_failed("context1", errno),
        };
        let (to, from) = (partner.to_child, partner.from_child);
        let ok = self.timed("context1", count, |os, i| {
            let byte = i.to_le_bytes()[0];
            os.write(to, &[byte])?;
            let mut back = [0u8; 1];
            match os.read(from, &mut back)? {
                1 if back[0] == byte => Ok(()),
                _ => Err(ankh_ulib::errno::EPIPE),
            }
        });
        let _ = self.os.close(to);
        let _ = self.os.wait(partner.pid);
        let _ = self.os.close(from);
        ok
    }

    /// `fcopy-*`: copies `blocks` blocks of `block` bytes from the source file to the
    /// target, wrapping around at the end of the source.
    fn copy(&mut self, name: &str, block: usize, blocks: u64) -> bool {
        let (src, dst) = match open_copy_files(self.os) {
            Ok(fds) => fds,
            Err(errno) => return self.setup_failed(name, errno),
        };
        let mut buf = vec![0u8; block];
        let ok = self.timed(name, blocks, |os, _| {
            let mut n = os.read(src, &mut buf)?;
            if n == 0 {
                os.lseek(src, 0, SEEK_SET)?;
                os.lseek(dst, 0, SEEK_SET)?;
                n = os.read(src, &mut buf)?;
            }
            os.write(dst, &buf[..n]).map(drop)
        });
        let _ = self.os.close(src);
        let _ = self.os.close(dst);
        let _ = self.os.unlink(COPY_SOURCE);
        let _ = self.os.unlink(COPY_TARGET);
        ok
    }

    /// `ds-lookup`: retrieves of one key.
    fn ds(&mut self, count: u64) -> bool {
        if let Err(errno) = self.os.ds_publish(DS_KEY, "value") {
            return self.setup_failed("ds-lookup", errno);
        }
        let ok = self.timed("ds-lookup", count, |os, _| os.ds_retrieve(DS_KEY).map(drop));
        let _ = self.os.ds_delete(DS_KEY);
        ok
    }
}

/// One `spawn` operation: start `child-exit3`, wait for it.
fn spawn_wait<C: Channel>(os: &mut Os<C>, _: u64) -> Result<(), Errno> {
    let pid = os.spawn(CHILD_EXIT3, &["child-exit3"], false)?;
    os.wait(pid).map(drop)
}

/// A `pipe-child` echoing what it gets, and our ends of its pipes.
struct Partner {
    /// The child.
    pid: ankh_ulib::Pid,
    /// We write here.
    to_child: Fd,
    /// We read the echo here.
    from_child: Fd,
}

/// Starts the `context1` partner.
fn start_partner<C: Channel>(os: &mut Os<C>) -> Result<Partner, Errno> {
    let (in_r, in_w) = os.pipe()?;
    let (out_r, out_w) = os.pipe()?;
    let args = [in_r, in_w, out_r, out_w].map(|fd| u64::try_from(fd).unwrap_or(u64::MAX));
    os.pass_args(&args)?;
    let pid = os.spawn(PIPE_CHILD, &["pipe-child"], true)?;
    os.close(in_r)?;
    os.close(out_w)?;
    Ok(Partner {
        pid,
        to_child: in_w,
        from_child: out_r,
    })
}

/// Creates the source file (`COPY_SOURCE_SIZE` bytes) and opens it and the target.
fn open_copy_files<C: Channel>(os: &mut Os<C>) -> Result<(Fd, Fd), Errno> {
    let src = os.open(COPY_SOURCE, O_CREAT | O_TRUNC | O_RDWR)?;
    let data = vec![0x5au8; COPY_SOURCE_SIZE];
    os.write(src, &data)?;
    os.close(src)?;
    let src = os.open(COPY_SOURCE, O_RDONLY)?;
    let dst = os.open(COPY_TARGET, O_CREAT | O_TRUNC | O_WRONLY)?;
    Ok((src, dst))
}
