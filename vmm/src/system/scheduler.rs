//! The host threads that run a system's vCPUs (see the module docs of `system`).

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Instant;

use virtio_seep::message::DomainId;
use virtio_seep::queue::{IpcOp, QueueSetup};
use zerocopy::FromBytes;

use super::{DomainEnd, IpcTrace};
use crate::domain::{Domain, RunEvent};
use crate::fault::DomainFault;
use crate::ipc::queues::DomainQueues;
use crate::ipc::router::{Activity, Router, WaitOutcome};
use crate::ipc::{IpcFault, Message};

/// What the threads share.
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    router: Router,
    /// Per thread: domains ready to run, the next one first.
    ready: Vec<VecDeque<DomainId>>,
    /// Domains being run right now.
    running: usize,
    /// The system is quiet: every thread returns.
    done: bool,
    /// Which thread runs each domain.
    thread_of: HashMap<DomainId, usize>,
}

impl State {
    /// Puts woken domains on their threads' ready queues: the current thread's at the
    /// front (the direct switch), others at the back. Returns whether another thread
    /// must be woken.
    fn schedule(&mut self, woken: &[DomainId], current_thread: usize) -> bool {
        let mut other = false;
        for id in woken.iter().rev() {
            let thread = self.thread_of[id];
            if thread == current_thread {
                self.ready[thread].push_front(*id);
            } else {
                self.ready[thread].push_back(*id);
                other = true;
            }
        }
        other
    }
}

/// A domain and its queues, owned by the thread that runs it.
struct Slot {
    domain: Domain,
    queues: Option<DomainQueues>,
}

/// What a domain does next after an IPC hypercall.
enum Next {
    Run,
    Block,
}

/// Runs the domains on `threads` host threads until the system is quiet; returns how
/// each domain ended up.
pub fn run(
    router: Router,
    threads: usize,
    domains: Vec<(DomainId, usize, Domain)>,
    trace: Option<IpcTrace>,
) -> Vec<(DomainId, DomainEnd)> {
    let threads = threads.max(1);
    let mut per_thread: Vec<HashMap<DomainId, Slot>> =
        (0..threads).map(|_| HashMap::new()).collect();
    let mut ready = vec![VecDeque::new(); threads];
    let mut thread_of = HashMap::new();
    for (id, thread, domain) in domains {
        let thread = thread.min(threads - 1);
        ready[thread].push_back(id);
        thread_of.insert(id, thread);
        per_thread[thread].insert(
            id,
            Slot {
                domain,
                queues: None,
            },
        );
    }
    let shared = Shared {
        state: Mutex::new(State {
            router,
            ready,
            running: 0,
            done: false,
            thread_of,
        }),
        changed: Condvar::new(),
    };
    let mut ends = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(index, slots)| {
                let shared = &shared;
                let trace = trace.clone();
                std::thread::Builder::new()
                    .name(format!("ankh-vcpu-{index}"))
                    .spawn_scoped(scope, move || {
                        Worker {
                            shared,
                            index,
                            slots,
                            host_errors: Vec::new(),
                            trace,
                        }
                        .run()
                    })
                    .expect("spawning a vCPU thread")
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("vCPU threads do not panic"))
            .collect::<Vec<_>>()
    });
    let state = shared.state.into_inner().expect("no thread panicked");
    for (id, end) in ends.iter_mut() {
        if let DomainEnd::Waiting(_) = end {
            if let Activity::Waiting(wait) = state.router.activity(*id) {
                *end = DomainEnd::Waiting(*wait);
            }
        }
    }
    ends
}

struct Worker<'a> {
    shared: &'a Shared,
    index: usize,
    slots: HashMap<DomainId, Slot>,
    host_errors: Vec<(DomainId, String)>,
    trace: Option<IpcTrace>,
}

impl Worker<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("no thread panicked")
    }

    fn run(mut self) -> Vec<(DomainId, DomainEnd)> {
        while let Some((id, delivery)) = self.next_domain() {
            self.run_domain(id, delivery);
            let mut state = self.lock();
            state.running -= 1;
            if state.ready.iter().all(VecDeque::is_empty) && state.running == 0 {
                state.done = true;
                self.shared.changed.notify_all();
            }
        }
        let errors: HashMap<DomainId, String> = self.host_errors.drain(..).collect();
        self.slots
            .into_iter()
            .map(|(id, slot)| {
                let end = match (errors.get(&id), slot.domain.state()) {
                    (Some(error), _) => DomainEnd::HostError(error.clone()),
                    (None, crate::DomainState::Stopped(exit)) => DomainEnd::Stopped(exit.clone()),
                    // Refined by the caller from the router's view.
                    (None, crate::DomainState::Ready) => {
                        DomainEnd::Waiting(crate::ipc::router::Wait::Receive { from: None })
                    }
                };
                (id, end)
            })
            .collect()
    }

    /// Waits for a domain of this thread to be ready; `None` when the system is quiet.
    fn next_domain(&self) -> Option<(DomainId, Option<Box<Message>>)> {
        let mut state = self.lock();
        loop {
            if state.done {
                return None;
            }
            if let Some(id) = state.ready[self.index].pop_front() {
                state.running += 1;
                let delivery = state.router.take_delivery(id);
                return Some((id, delivery));
            }
            state = self.shared.changed.wait(state).expect("no thread panicked");
        }
    }

    /// Runs domain `id` until it blocks or stops.
    fn run_domain(&mut self, id: DomainId, delivery: Option<Box<Message>>) {
        if let Some(message) = delivery {
            if let Err(fault) = self.deliver(id, &message) {
                return self.fail(id, fault.into());
            }
        }
        loop {
            let slot = self
                .slots
                .get_mut(&id)
                .expect("a thread runs only its domains");
            let event = match slot.domain.resume(|_| false) {
                Ok(event) => event,
                Err(error) => {
                    self.host_errors.push((id, error.to_string()));
                    return self.stopped(id);
                }
            };
            let next = match event {
                RunEvent::Stopped(_) => return self.stopped(id),
                RunEvent::Paused(_) => Ok(Next::Run),
                RunEvent::IpcSetup(address) => self.setup(id, address).map(|()| Next::Run),
                RunEvent::Ipc(value) => {
                    if let Some(trace) = &self.trace {
                        trace(id, &self.slots[&id].domain);
                    }
                    self.ipc(id, value)
                }
            };
            match next {
                Ok(Next::Run) => {}
                Ok(Next::Block) => return,
                Err(fault) => return self.fail(id, fault.into()),
            }
        }
    }

    fn setup(&mut self, id: DomainId, address: u64) -> Result<(), IpcFault> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        if slot.queues.is_some() {
            return Err(IpcFault::NotSetUp("set up twice"));
        }
        let bytes = slot
            .domain
            .memory()
            .read_guest(
                address,
                size_of::<QueueSetup>() as u64,
                size_of::<QueueSetup>() as u64,
            )
            .map_err(|e| IpcFault::BadSetup(e.to_string()))?;
        let setup = QueueSetup::read_from_bytes(&bytes).expect("exact size");
        slot.queues = Some(DomainQueues::setup(slot.domain.memory(), &setup)?);
        Ok(())
    }

    fn ipc(&mut self, id: DomainId, value: u32) -> Result<Next, IpcFault> {
        let (op, source) = IpcOp::decode(value)
            .ok_or_else(|| IpcFault::BadOperation(format!("value {value:#x}")))?;
        let slot = self.slots.get_mut(&id).expect("own domain");
        let queues = slot
            .queues
            .as_mut()
            .ok_or(IpcFault::NotSetUp("before IpcSetup"))?;
        let messages = queues.drain_tx(slot.domain.memory())?;
        let outcome = {
            let mut state = self.lock();
            let (woken, last_request) = state.router.submit(id, messages, Instant::now())?;
            if state.schedule(&woken, self.index) {
                self.shared.changed.notify_all();
            }
            state.router.wait(id, op, source, last_request)?
        };
        match outcome {
            WaitOutcome::Continue => Ok(Next::Run),
            WaitOutcome::Deliver(message) => self.deliver(id, &message).map(|()| Next::Run),
            WaitOutcome::Blocked => Ok(Next::Block),
        }
    }

    fn deliver(&mut self, id: DomainId, message: &Message) -> Result<(), IpcFault> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let queues = slot.queues.as_mut().ok_or(IpcFault::NoReceiveBuffer)?;
        queues.deliver(slot.domain.memory(), message)
    }

    fn fail(&mut self, id: DomainId, fault: DomainFault) {
        let slot = self.slots.get_mut(&id).expect("own domain");
        slot.domain.fail(fault);
        self.stopped(id);
    }

    /// Tells the router the domain is gone and schedules whoever that wakes.
    fn stopped(&mut self, id: DomainId) {
        let mut state = self.lock();
        let woken = state.router.stopped(id);
        if state.schedule(&woken, self.index) {
            self.shared.changed.notify_all();
        }
    }
}
