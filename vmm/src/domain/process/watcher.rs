//! The host event source of each process domain, on one `event-manager` loop: the
//! domain's pidfd, readable once its process is gone (killed from outside, or its setup
//! failed). The loop then marks the domain dead and wakes the VMM thread that may be
//! waiting for its next report on the control page's futex, so that a dead process is
//! noticed at once instead of by polling.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

use event_manager::{
    EventManager, EventOps, EventSet, Events, MutEventSubscriber, SubscriberId, SubscriberOps,
};
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// What the loop and the domain's VMM side share.
pub(super) struct Liveness {
    /// Set once the process is gone.
    pub(super) dead: AtomicBool,
    /// The control page's futex word (the mapping outlives both sides: see `Mapping`).
    turn: *const AtomicU32,
    /// Keeps the control page mapped while the loop may still wake its word.
    _mapping: Arc<super::Mapping>,
}

// SAFETY: `turn` points into `_mapping`, which this value keeps alive; the word is only
// touched atomically.
unsafe impl Send for Liveness {}
// SAFETY: as above.
unsafe impl Sync for Liveness {}

impl Liveness {
    pub(super) fn new(mapping: Arc<super::Mapping>, turn: *const AtomicU32) -> Liveness {
        Liveness {
            dead: AtomicBool::new(false),
            turn,
            _mapping: mapping,
        }
    }

    fn mark_dead(&self) {
        self.dead.store(true, Ordering::Release);
        // SAFETY: the word is in the mapping this value keeps alive.
        let turn = unsafe { &*self.turn };
        super::futex(turn, libc::FUTEX_WAKE, u32::MAX, None).ok();
    }
}

/// One domain's pidfd.
struct Watched {
    pidfd: OwnedFd,
    liveness: Arc<Liveness>,
    done: Arc<AtomicBool>,
}

impl MutEventSubscriber for Watched {
    fn process(&mut self, events: Events, ops: &mut EventOps) {
        self.liveness.mark_dead();
        // Once is enough: the loop drops this subscriber (and closes the pidfd).
        let _ = ops.remove(events);
        self.done.store(true, Ordering::Release);
    }

    fn init(&mut self, ops: &mut EventOps) {
        if ops
            .add(Events::new_raw(self.pidfd.as_raw_fd(), EventSet::IN))
            .is_err()
        {
            // Not watched: the VMM side still sees the death when it next polls.
            self.done.store(true, Ordering::Release);
        }
    }
}

/// Wakes the loop to take new subscribers.
struct Doorbell(EventFd);

impl MutEventSubscriber for Doorbell {
    fn process(&mut self, _events: Events, _ops: &mut EventOps) {
        let _ = self.0.read();
    }

    fn init(&mut self, ops: &mut EventOps) {
        let _ = ops.add(Events::new_raw(self.0.as_raw_fd(), EventSet::IN));
    }
}

type Subscriber = Box<dyn MutEventSubscriber + Send>;

struct Loop {
    requests: Mutex<mpsc::Sender<Watched>>,
    doorbell: EventFd,
}

fn event_loop() -> std::io::Result<&'static Loop> {
    static LOOP: OnceLock<Loop> = OnceLock::new();
    if let Some(running) = LOOP.get() {
        return Ok(running);
    }
    let mut manager = EventManager::<Subscriber>::new().map_err(std::io::Error::other)?;
    let doorbell = EventFd::new(EFD_NONBLOCK)?;
    manager.add_subscriber(Box::new(Doorbell(doorbell.try_clone()?)));
    let (sender, requests) = mpsc::channel::<Watched>();
    std::thread::Builder::new()
        .name("ankh-processes".into())
        .spawn(move || serve(manager, requests))?;
    Ok(LOOP.get_or_init(|| Loop {
        requests: Mutex::new(sender),
        doorbell,
    }))
}

fn serve(mut manager: EventManager<Subscriber>, requests: mpsc::Receiver<Watched>) {
    let mut watched: Vec<(SubscriberId, Arc<AtomicBool>)> = Vec::new();
    loop {
        while let Ok(new) = requests.try_recv() {
            let done = Arc::clone(&new.done);
            watched.push((manager.add_subscriber(Box::new(new)), done));
        }
        if let Err(error) = manager.run() {
            tracing::error!("ankh: the process domains' event loop stopped: {error}");
            return;
        }
        watched.retain(|(id, done)| {
            let finished = done.load(Ordering::Acquire);
            if finished {
                let _ = manager.remove_subscriber(*id);
            }
            !finished
        });
    }
}

/// Watches process `pid`: `liveness` is marked dead (and its waiter woken) when it ends.
pub(super) fn watch(pid: u32, liveness: Arc<Liveness>) -> std::io::Result<()> {
    let pid = libc::pid_t::try_from(pid).map_err(std::io::Error::other)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(std::io::Error::other)?;
    // SAFETY: `fd` is a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(fd) };
    let running = event_loop()?;
    let watched = Watched {
        pidfd,
        liveness,
        done: Arc::new(AtomicBool::new(false)),
    };
    running
        .requests
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .send(watched)
        .map_err(|_| std::io::Error::other("the process domains' event loop is gone"))?;
    running.doorbell.write(1)
}
