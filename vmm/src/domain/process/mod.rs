//! The process substrate: a domain that is a Linux process instead of a VM (the
//! microkernel build). The guest image is the same ELF; the tender
//! (`guest-servers/tender`, protocol in `virtio_seep::abi::process`) runs it at its
//! guest-physical addresses in a memfd the VMM maps too, reports each exit through the
//! control page and waits on its futex for the VMM's answer. [`ProcessCpu`] is the
//! VMM's side: the analogue of a vCPU (run until the next exit, registers, the pages
//! written since the last look, a kick).
//!
//! Files: `spawn` (starting the tender), `filter` (its seccomp program), `tracking`
//! (the written pages), `mmio` (the device window, emulated like KVM does).

mod filter;
pub(super) mod mmio;
mod spawn;
mod step;
mod tracking;
mod turns;
mod watcher;

pub use tracking::TrackingStats;
pub use turns::OUTSIDE_LIMIT as OUTSIDE_TURNS_LIMIT;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::{Child, ExitStatus};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use virtio_seep::abi::process::{
    ControlPage, ExitRecord, Regs, Setup, CONTROL_SIZE, FILTER_OFFSET, SETUP_MAGIC, TURN_GUEST,
    TURN_VMM,
};

use crate::watchdog::VcpuWatch;

/// How often a waiting VMM thread looks whether the process died, should the event
/// loop's wake-up (`watcher`) be lost: a fallback, not the way deaths are noticed.
const LIVENESS_POLL: Duration = Duration::from_millis(250);

/// How long a kicked process may take to report before it is killed: a guest that
/// keeps its runtime's in-call byte set ignores kicks, and must not hold the VMM.
const KICK_GRACE: Duration = Duration::from_millis(200);

/// The signal that makes the tender report a "kicked" exit (preemption, watchdog).
const KICK: libc::c_int = libc::SIGUSR1;

/// Why a process domain could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A system call of the VMM failed.
    #[error("{what}: {source}")]
    Host {
        /// What was being done.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The seccomp program could not be built.
    #[error(transparent)]
    Filter(#[from] filter::FilterError),
}

fn host(what: &'static str) -> impl FnOnce(std::io::Error) -> ProcessError {
    move |source| ProcessError::Host { what, source }
}

/// What running the process produced.
pub(super) enum ProcessExit {
    /// The tender reported an exit (the registers are in the control page).
    Exit(ExitRecord),
    /// The process is gone (killed, or its setup failed with an exit code).
    Died(ExitStatus),
}

/// The VMM's mapping of a control memfd (unmapped when the last holder drops it).
pub(super) struct Mapping {
    base: *mut libc::c_void,
    _file: File,
}

// SAFETY: the mapping is plain shared memory, accessed with volatile and atomic
// operations only by its holders.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `ProcessCpu::spawn`, of CONTROL_SIZE bytes;
        // nothing uses it any more (this is its last holder).
        unsafe { libc::munmap(self.base, usize::try_from(CONTROL_SIZE).expect("small")) };
    }
}

/// The VMM's side of one process domain.
pub struct ProcessCpu {
    child: Child,
    control: *mut ControlPage,
    /// Whether the process is gone, as its pidfd on the event loop says.
    liveness: Arc<watcher::Liveness>,
    /// The tracking of the guest's writes (with `track_writes`); behind a lock because
    /// benchmarks count written pages through `&Domain`.
    tracker: Option<std::sync::Mutex<tracking::WriteTracker>>,
    /// The CPU the process is pinned to (the one the VMM thread that runs it was on).
    pinned: Option<usize>,
    /// When a kick was sent whose "kicked" exit has not been seen yet.
    kicked: Option<Instant>,
    /// The x87/SSE state of the last checkpoint, once the guest saved it (it does
    /// when it resumes: see `ControlPage::fpu_save`).
    checkpoint_fpu: Option<Box<[u8; 512]>>,
    /// A checkpoint asked for the x87/SSE state and the guest has not resumed since.
    checkpoint_fpu_pending: bool,
    /// Its turns, against its CPU time (see `turns`).
    turns: turns::TurnAccount,
}

// SAFETY: `control` points into a shared mapping owned by this value (unmapped on drop);
// all accesses go through `&self`/`&mut self`, and the tender on the other side only
// touches it while the turn is its own.
unsafe impl Send for ProcessCpu {}

impl ProcessCpu {
    /// Starts the process of a domain whose RAM is `ram` (`memory_size` bytes, the
    /// image and boot information already loaded), entering at `entry`.
    /// `track_writes`: register its RAM for write tracking (checkpoints).
    pub fn spawn(
        ram: &File,
        memory_size: u64,
        entry: u64,
        track_writes: bool,
    ) -> Result<ProcessCpu, ProcessError> {
        let control_file = spawn::memfd("ankh-control", 0).map_err(host("memfd_create"))?;
        control_file
            .set_len(CONTROL_SIZE)
            .map_err(host("ftruncate of the control memfd"))?;
        let len = usize::try_from(CONTROL_SIZE).expect("two pages");
        // SAFETY: a new shared mapping of the whole control memfd; nothing else lives
        // at the address the kernel picks.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                control_file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(host("mmap of the control memfd")(
                std::io::Error::last_os_error(),
            ));
        }
        let program = filter::program(track_writes.then_some(memory_size))?;
        let mapping = Arc::new(Mapping {
            base,
            _file: control_file
                .try_clone()
                .map_err(host("dup of the control memfd"))?,
        });
        let control = base.cast::<ControlPage>();
        // SAFETY: the mapping is CONTROL_SIZE bytes, zeroed, page-aligned: room for the
        // control page and, at FILTER_OFFSET, the program (bounded by FILTER_MAX,
        // checked by the filter's test). The tender does not run yet.
        unsafe {
            let page = &mut *control;
            page.turn = TURN_VMM;
            page.setup = Setup {
                magic: SETUP_MAGIC,
                memory_size,
                entry,
                filter_len: program.len() as u64 / 8,
                track_writes: u64::from(track_writes),
            };
            std::ptr::copy_nonoverlapping(
                program.as_ptr(),
                base.cast::<u8>()
                    .add(usize::try_from(FILTER_OFFSET).expect("small")),
                program.len(),
            );
        }
        // SAFETY: `turn` is the first field of the mapped page, 4-byte aligned.
        let turn = unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*control).turn)) };
        let liveness = Arc::new(watcher::Liveness::new(mapping, turn));
        let child = spawn::spawn_tender(ram, &control_file).map_err(host("starting the tender"))?;
        watcher::watch(child.id(), Arc::clone(&liveness)).map_err(host("watching the process"))?;
        let turns = turns::TurnAccount::new(child.id());
        let mut cpu = ProcessCpu {
            turns,
            child,
            control,
            liveness,
            tracker: None,
            pinned: None,
            kicked: None,
            checkpoint_fpu: None,
            checkpoint_fpu_pending: false,
        };
        if track_writes {
            let tracker = tracking::WriteTracker::new(cpu.child.id(), memory_size);
            cpu.tracker = Some(std::sync::Mutex::new(tracker));
        }
        Ok(cpu)
    }

    fn turn(&self) -> &AtomicU32 {
        // SAFETY: `turn` is the first field of the mapped control page, 4-byte aligned;
        // both processes access it atomically only.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*self.control).turn)) }
    }

    fn waiting(&self) -> &AtomicU32 {
        // SAFETY: a 4-byte aligned field of the mapped control page, accessed
        // atomically by both processes.
        unsafe { AtomicU32::from_ptr(std::ptr::addr_of_mut!((*self.control).vmm_waiting)) }
    }

    /// The guest's registers at its last exit (what it resumes with).
    pub fn regs(&self) -> Regs {
        // SAFETY: the turn is the VMM's whenever this runs (between `run`s).
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.control).regs)) }
    }

    /// The guest's `rip` at its last exit.
    pub fn rip(&self) -> u64 {
        // SAFETY: as in `regs`.
        unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.control).regs.rip)) }
    }

    /// Sets the `rip` the guest resumes at.
    pub fn set_rip(&mut self, rip: u64) {
        // SAFETY: as in `regs`.
        unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*self.control).regs.rip), rip) }
    }

    /// Sets the registers the guest resumes with.
    pub fn set_regs(&mut self, regs: &Regs) {
        // SAFETY: as in `regs`.
        unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*self.control).regs), *regs) }
    }

    /// Asks for the guest's x87/SSE state at this boundary (a checkpoint): the guest
    /// saves it when it resumes, and the next exit collects it. An FXSAVE at every
    /// call would cost more than this one at each checkpoint.
    pub fn checkpoint_fpu(&mut self) {
        // SAFETY: as in `regs`.
        unsafe { std::ptr::write_volatile(std::ptr::addr_of_mut!((*self.control).fpu_save), 1) };
        self.checkpoint_fpu_pending = true;
    }

    /// Has the guest resume with the x87/SSE state of the last checkpoint (a rollback).
    pub fn rollback_fpu(&mut self) {
        if self.checkpoint_fpu_pending {
            // It has not run since the checkpoint: its state is still the checkpoint's
            // (or the one an earlier rollback left for it to load, which it was then).
            return;
        }
        if let Some(fpu) = &self.checkpoint_fpu {
            // SAFETY: as in `regs`; the guest reads the area only once it has the turn.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    fpu.as_ptr(),
                    std::ptr::addr_of_mut!((*self.control).fpu).cast::<u8>(),
                    512,
                );
                std::ptr::write_volatile(std::ptr::addr_of_mut!((*self.control).fpu_load), 1);
            }
        }
    }

    /// Collects the x87/SSE state a checkpoint asked for, once the guest saved it.
    fn collect_checkpoint_fpu(&mut self) {
        // SAFETY: as in `regs` (called at an exit).
        let saved =
            unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.control).fpu_save)) } == 0;
        if saved {
            let kept = self
                .checkpoint_fpu
                .get_or_insert_with(|| Box::new([0; 512]));
            // SAFETY: as above; the guest wrote the area before it handed the turn over
            // (the futex handover orders it), and touches it no more until it runs.
            // A plain copy: a volatile read of the array goes byte by byte.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    std::ptr::addr_of!((*self.control).fpu_checkpoint).cast::<u8>(),
                    kept.as_mut_ptr(),
                    512,
                );
            }
            self.checkpoint_fpu_pending = false;
        }
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process still runs (false once it died or was killed).
    pub fn alive(&mut self) -> bool {
        self.poll_death().is_none()
    }

    fn poll_death(&mut self) -> Option<ExitStatus> {
        // Once reaped, `Child` keeps the status: asking again is free.
        self.child.try_wait().ok().flatten()
    }

    /// Gives the guest the turn and waits for its next exit. `watch` is the domain's
    /// watchdog: when it fires or the turn ends (the thread is kicked out of the wait,
    /// as out of KVM_RUN), the tender is kicked in turn and reports a "kicked" exit.
    pub(super) fn run(&mut self, watch: &VcpuWatch) -> ProcessExit {
        let start = crate::tsc::now();
        let exit = self.take_turn(watch);
        self.turns.count(start);
        exit
    }

    /// CPU time the process took outside its turns, at most (see `turns`); `None` when
    /// it cannot be told (the process is gone).
    pub fn cpu_outside_turns(&self) -> Option<std::time::Duration> {
        self.turns.outside()
    }

    /// Ends the process now (SIGKILL, and waits for it to be gone), whatever it does.
    pub fn end(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn take_turn(&mut self, watch: &VcpuWatch) -> ProcessExit {
        // The event loop says when the process is gone: no `waitpid` per exit.
        if self.liveness.dead.load(Ordering::Acquire) {
            if let Some(status) = self.poll_death() {
                return ProcessExit::Died(status);
            }
        }
        self.follow_current_cpu();
        self.turn().store(TURN_GUEST, Ordering::Release);
        // Woken or not (the tender may not wait yet), it sees the turn before waiting.
        let _ = futex(self.turn(), libc::FUTEX_WAKE, 1, None);
        let mut yielded = false;
        loop {
            if self.turn().load(Ordering::Acquire) == TURN_VMM {
                break;
            }
            // The process runs on this thread's CPU (`follow_current_cpu`). When the
            // wake did not switch to it at once, give it the CPU: it hands the turn
            // back without a wake-up of this thread, which is dearer than the yield (a
            // futex wait, a wake by the guest, a switch back). Without the yield this
            // thread went to sleep before about 1 handover in 9 of ubench's
            // `fcopy-1k` on processes, and more often when the guest ran longer: 1 in
            // 4 under `enhanced`, whose traps and hand-backs lengthen its turns.
            if !yielded {
                yielded = true;
                // SAFETY: no arguments.
                unsafe { libc::sched_yield() };
                continue;
            }
            // Say we sleep before the last look at the turn (see `vmm_waiting`).
            self.waiting().swap(1, Ordering::SeqCst);
            let woke = match self.turn().load(Ordering::SeqCst) {
                TURN_VMM => Ok(()),
                _ => futex(
                    self.turn(),
                    libc::FUTEX_WAIT,
                    TURN_GUEST,
                    Some(LIVENESS_POLL),
                ),
            };
            self.waiting().store(0, Ordering::Relaxed);
            if self.liveness.dead.load(Ordering::Acquire) || woke == Err(libc::ETIMEDOUT) {
                if let Some(status) = self.poll_death() {
                    return ProcessExit::Died(status);
                }
            }
            match self.kicked {
                None if watch.fired() || watch.preempted() => self.kick(),
                Some(at) if at.elapsed() > KICK_GRACE => {
                    // It ignores its kicks: end it (the event loop then wakes us).
                    let _ = self.child.kill();
                }
                _ => {}
            }
        }
        // SAFETY: the turn is the VMM's: the tender wrote the record before handing it.
        let exit = unsafe { std::ptr::read_volatile(std::ptr::addr_of!((*self.control).exit)) };
        // Any report answers a kick: the process is stopped at an exit either way (a
        // kick still queued is taken later, as a stale one).
        self.kicked = None;
        if self.checkpoint_fpu_pending {
            self.collect_checkpoint_fpu();
        }
        ProcessExit::Exit(exit)
    }

    fn kick(&mut self) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap_or(libc::pid_t::MAX);
        // SAFETY: `pid` is our unreaped child (a zombie at worst), so it names no
        // other process.
        unsafe { libc::kill(pid, KICK) };
        self.kicked = Some(Instant::now());
    }

    /// Pins the process to the CPU this thread runs on: a futex handover to the other
    /// core costs 20 times one on the same core on these hosts.
    fn follow_current_cpu(&mut self) {
        // SAFETY: no arguments.
        let cpu = unsafe { libc::sched_getcpu() };
        let Ok(cpu) = usize::try_from(cpu) else {
            return;
        };
        if self.pinned == Some(cpu) {
            return;
        }
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it
        // (it ignores a CPU number beyond the set).
        let set = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            set
        };
        let pid = libc::pid_t::try_from(self.child.id()).unwrap_or(0);
        // SAFETY: sched_setaffinity reads `set`; `pid` is our child.
        if unsafe { libc::sched_setaffinity(pid, std::mem::size_of_val(&set), &set) } == 0 {
            self.pinned = Some(cpu);
        }
    }

    /// Sets in `bitmap` the pages of guest RAM the process may have written since the
    /// last look (see `tracking`). `protect_all`: protect every page again, so that
    /// the next write of each is seen (instead of keeping the hot ones writable). Only
    /// between runs (the turn is the VMM's).
    pub fn take_written(&self, bitmap: &mut [u64], protect_all: bool) -> std::io::Result<()> {
        let Some(tracker) = self.tracker.as_ref() else {
            return Err(std::io::Error::other(
                "the domain does not track its writes",
            ));
        };
        let mut tracker = tracker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // SAFETY: the control page is mapped for this value's life, and the turn is
        // the VMM's between runs.
        unsafe { tracker.look(self.control, bitmap, protect_all) }
    }

    /// What the write tracking did (`None` without `track_writes`).
    pub fn tracking_stats(&self) -> Option<TrackingStats> {
        self.tracker.as_ref().map(|tracker| {
            tracker
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .stats()
        })
    }
}

impl Drop for ProcessCpu {
    fn drop(&mut self) {
        // A stopped domain's process waits in its handler for ever: end it. The
        // control page's mapping goes with the last of this domain's `liveness` and
        // the event loop's subscriber (`Mapping`).
        self.end();
    }
}

/// A futex call on a word shared with another process (no private flag). `Err(errno)`
/// on failure (ETIMEDOUT, EAGAIN: the word changed, EINTR: a signal, e.g. the
/// watchdog's kick of this thread).
fn futex(
    word: &AtomicU32,
    op: libc::c_int,
    value: u32,
    timeout: Option<Duration>,
) -> Result<(), libc::c_int> {
    let timeout = timeout.map(|t| libc::timespec {
        tv_sec: libc::time_t::try_from(t.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(t.subsec_nanos()),
    });
    let timeout_ptr = timeout
        .as_ref()
        .map_or(std::ptr::null(), std::ptr::from_ref);
    // SAFETY: the futex word is valid for the call; the timeout (if any) lives on this
    // frame; the kernel writes nothing.
    let result = unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, value, timeout_ptr) };
    match result {
        -1 => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0)),
        _ => Ok(()),
    }
}

/// Copies every general register from `$from` into a new `$to` (the process's
/// registers and KVM's have the same fields, in the same order).
macro_rules! copy_regs {
    ($from:expr, $to:path) => {{
        let from = $from;
        $to {
            rax: from.rax,
            rbx: from.rbx,
            rcx: from.rcx,
            rdx: from.rdx,
            rsi: from.rsi,
            rdi: from.rdi,
            rsp: from.rsp,
            rbp: from.rbp,
            r8: from.r8,
            r9: from.r9,
            r10: from.r10,
            r11: from.r11,
            r12: from.r12,
            r13: from.r13,
            r14: from.r14,
            r15: from.r15,
            rip: from.rip,
            rflags: from.rflags,
        }
    }};
}

/// The process's registers in KVM's layout.
pub(super) fn to_kvm_regs(regs: &Regs) -> kvm_bindings::kvm_regs {
    copy_regs!(regs, kvm_bindings::kvm_regs)
}

/// KVM's registers in the process's layout.
pub(super) fn from_kvm_regs(regs: &kvm_bindings::kvm_regs) -> Regs {
    copy_regs!(regs, Regs)
}
