//! The watchdog: stops a vCPU that runs too long without a single exit.
//!
//! A guest stuck in a loop never leaves KVM_RUN, so the thread running it cannot notice
//! by itself. One watchdog thread per process watches every running vCPU. Each vCPU
//! publishes, in one atomic word, a counter of its KVM_RUN entries, whether it is inside
//! KVM_RUN, and a "fired" bit only the watchdog sets. When the counter has not moved for
//! longer than the vCPU's timeout while it is inside KVM_RUN, the watchdog sets the bit
//! (by compare-and-swap on the exact word it observed, so it can never blame a later
//! run) and sends the vCPU's thread a signal, which makes KVM_RUN return `EINTR`. A
//! signal that races with the entry into KVM_RUN is simply sent again on the next tick.
//!
//! The same thread also ends a vCPU's scheduling turn: when a vCPU is still inside
//! KVM_RUN past the preemption deadline its scheduler set
//! ([`VcpuWatch::set_preempt_at`]), the watchdog sets the "preempt" bit and kicks it
//! the same way. A preempted vCPU keeps its counter on its next entry, and the time it
//! waits for its next turn still counts towards its timeout: a guest that spins
//! without exits is stopped after the same timeout whether or not it is preempted.
//!
//! The hot path costs one load and one store on entry and one atomic AND on exit; no
//! clock is read.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

const FIRED: u64 = 1;
const IN_GUEST: u64 = 2;
const PREEMPTED: u64 = 4;
const COUNTER_SHIFT: u32 = 3;

/// The instant preemption deadlines count from (they are kept as nanoseconds since it
/// in one atomic word).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// `at` as nanoseconds since [`epoch`], at least 1 (0 means "no deadline").
fn since_epoch(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(epoch()).as_nanos())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// How often the watchdog looks at the vCPUs it watches.
const TICK: Duration = Duration::from_millis(5);

/// The signal that kicks a vCPU out of KVM_RUN.
fn kick_signal() -> libc::c_int {
    SIGRTMIN() + 1
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // Nothing to do: the signal's only purpose is to interrupt KVM_RUN with EINTR.
}

/// What the watchdog knows about one vCPU.
pub struct VcpuWatch {
    timeout: Duration,
    state: AtomicU64,
    /// When the vCPU's turn ends, in nanoseconds since [`epoch`] (0: never).
    preempt_at: AtomicU64,
    /// The thread currently running the vCPU; the watchdog kicks it only while holding
    /// this lock, so it never signals a thread that has stopped running the vCPU.
    thread: Mutex<Option<libc::pthread_t>>,
}

impl VcpuWatch {
    /// The timeout this vCPU runs under.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Binds the watch to the calling thread; call before running the vCPU.
    pub fn bind_current_thread(&self) {
        // SAFETY: pthread_self has no preconditions and always succeeds.
        let me = unsafe { libc::pthread_self() };
        *self.thread.lock().expect("watchdog lock") = Some(me);
    }

    /// Unbinds the watch; call before the thread may stop running the vCPU.
    pub fn unbind_thread(&self) {
        *self.thread.lock().expect("watchdog lock") = None;
    }

    /// Sets when the vCPU's turn ends (`None`: never); see the module docs.
    pub fn set_preempt_at(&self, at: Option<Instant>) {
        self.preempt_at
            .store(at.map_or(0, since_epoch), Ordering::Relaxed);
    }

    /// True when the turn set by [`set_preempt_at`](Self::set_preempt_at) is over.
    pub fn turn_over(&self) -> bool {
        let deadline = self.preempt_at.load(Ordering::Relaxed);
        deadline != 0 && since_epoch(Instant::now()) >= deadline
    }

    /// True when the last KVM_RUN was ended by a preemption kick (until the next
    /// [`enter`](Self::enter)).
    pub fn fired(&self) -> bool {
        self.state.load(Ordering::Acquire) & FIRED != 0
    }

    /// Whether the watchdog kicked the thread to end the domain's turn.
    pub fn preempted(&self) -> bool {
        self.state.load(Ordering::Acquire) & PREEMPTED != 0
    }

    /// Marks the start of a KVM_RUN (clears a previous fired or preempted bit). After
    /// a preemption the counter stays: being preempted is not an exit of the guest's.
    #[inline]
    pub fn enter(&self) {
        let state = self.state.load(Ordering::Relaxed);
        let counter = state >> COUNTER_SHIFT;
        let counter = match state & PREEMPTED {
            0 => counter.wrapping_add(1),
            _ => counter,
        };
        self.state
            .store((counter << COUNTER_SHIFT) | IN_GUEST, Ordering::Release);
    }

    /// Marks the end of a KVM_RUN; returns true when the watchdog fired during it.
    #[inline]
    pub fn leave(&self) -> bool {
        self.state.fetch_and(!IN_GUEST, Ordering::AcqRel) & FIRED != 0
    }
}

struct Entry {
    watch: Weak<VcpuWatch>,
    seen_counter: u64,
    seen_at: Instant,
}

/// The process-wide watchdog.
pub struct Watchdog {
    entries: Mutex<Vec<Entry>>,
    not_empty: Condvar,
}

impl Watchdog {
    /// The process's watchdog, started on first use.
    pub fn global() -> &'static Arc<Watchdog> {
        static WATCHDOG: OnceLock<Arc<Watchdog>> = OnceLock::new();
        WATCHDOG.get_or_init(|| {
            // Registration fails only for an invalid signal number, which SIGRTMIN+1
            // is not.
            register_signal_handler(kick_signal(), on_kick)
                .expect("registering the watchdog's kick signal");
            let watchdog = Arc::new(Watchdog {
                entries: Mutex::new(Vec::new()),
                not_empty: Condvar::new(),
            });
            let worker = Arc::clone(&watchdog);
            std::thread::Builder::new()
                .name("ankh-watchdog".into())
                .spawn(move || worker.patrol())
                .expect("spawning the watchdog thread");
            watchdog
        })
    }

    /// Starts watching a vCPU that must exit at least every `timeout`. The watch ends
    /// when the returned handle is dropped.
    pub fn watch(&self, timeout: Duration) -> Arc<VcpuWatch> {
        let watch = Arc::new(VcpuWatch {
            timeout,
            state: AtomicU64::new(0),
            preempt_at: AtomicU64::new(0),
            thread: Mutex::new(None),
        });
        self.entries.lock().expect("watchdog lock").push(Entry {
            watch: Arc::downgrade(&watch),
            seen_counter: 0,
            seen_at: Instant::now(),
        });
        self.not_empty.notify_one();
        watch
    }

    fn patrol(&self) {
        loop {
            let mut entries = self.entries.lock().expect("watchdog lock");
            entries.retain(|e| e.watch.strong_count() > 0);
            if entries.is_empty() {
                drop(self.not_empty.wait(entries).expect("watchdog lock"));
                continue;
            }
            let now = Instant::now();
            for entry in entries.iter_mut() {
                if let Some(watch) = entry.watch.upgrade() {
                    Self::inspect(entry, &watch, now);
                }
            }
            drop(entries);
            std::thread::sleep(TICK);
        }
    }

    fn inspect(entry: &mut Entry, watch: &VcpuWatch, now: Instant) {
        let state = watch.state.load(Ordering::Acquire);
        let counter = state >> COUNTER_SHIFT;
        let in_guest = state & IN_GUEST != 0;
        // Out of the guest after a preemption, the clock keeps running (module docs).
        if counter != entry.seen_counter || (!in_guest && state & PREEMPTED == 0) {
            entry.seen_counter = counter;
            entry.seen_at = now;
            return;
        }
        if !in_guest {
            return;
        }
        let bit = if now.duration_since(entry.seen_at) >= watch.timeout {
            FIRED
        } else {
            let deadline = watch.preempt_at.load(Ordering::Relaxed);
            if deadline == 0 || since_epoch(now) < deadline {
                return;
            }
            PREEMPTED
        };
        let kick = state & bit != 0
            || watch
                .state
                .compare_exchange(state, state | bit, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if kick {
            let thread = watch.thread.lock().expect("watchdog lock");
            if let Some(thread) = *thread {
                // SAFETY: `thread` is bound, so it is alive and running this vCPU: it is
                // unbound (under this same lock) before the thread stops running it.
                unsafe { libc::pthread_kill(thread, kick_signal()) };
            }
        }
    }
}
