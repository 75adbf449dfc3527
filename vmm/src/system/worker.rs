//! The host threads that run a system's vCPUs (see the module docs of `system`): each
//! runs its own domains, delivers their messages, serves their kernel calls (through
//! `kernel`) and recovers its servers (through `recovery`).

use std::collections::{HashMap, HashSet};

use rustc_hash::FxHashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use virtio_seep::abi::hypercall::Hypercall;
use virtio_seep::message::{DomainId, VMM_DOMAIN};
use virtio_seep::opcode::REPLY;
use virtio_seep::queue::IpcOp;

use ankh_recovery::{CoverageStats, RecoveryEvent};

use super::held::{Effect, HeldEffects};
use super::injection::{Injection, Kind, When};
use super::kernel;
use super::process_manager::{self, ExitCause};
use super::recovery::{Recovery, RecoverySite};
use super::scheduler::{Shared, State, Turns};
use super::{
    CheckpointCount, DomainEnd, HostFailure, IpcTrace, Resumption, SystemOptions, SystemStop,
    TraceEvent,
};
use crate::domain::{Domain, DomainState, RunEvent};
use crate::fault::DomainFault;
use crate::ipc::fault::OperationFault;
use crate::ipc::queues::DomainQueues;
use crate::ipc::router::{Activity, Router, Wait, WaitOutcome};
use crate::ipc::{IpcFault, Message};
use crate::kvm_host::KvmHost;

mod effects;
mod sites;
mod turn_audit;

/// What the threads need to create domains at run time.
pub(super) struct Spawner<'a> {
    pub(super) host: &'a KvmHost,
    pub(super) options: &'a SystemOptions,
}

/// A domain and its queues, owned by the thread that runs it.
struct Slot {
    domain: Domain,
    queues: Option<DomainQueues>,
    /// Present for servers: how they are recovered.
    recovery: Option<Recovery>,
}

impl Slot {
    fn new(domain: Domain, recovery: Option<Recovery>) -> Slot {
        Slot {
            domain,
            queues: None,
            recovery,
        }
    }
}

/// What a domain does next after an IPC hypercall.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Next {
    Run,
    Block,
}

/// What a thread does next.
enum Work {
    /// Run the domain (after delivering the message).
    Run(DomainId, Option<Box<Message>>),
    /// Inject a fault into the domain, which is not running.
    Inject(DomainId, Injection),
    /// Look for process domains that take CPU time outside their turns.
    AuditTurns,
}

/// A domain at the start.
pub(super) struct Boot {
    pub(super) id: DomainId,
    pub(super) thread: usize,
    pub(super) domain: Domain,
    pub(super) recovery: Option<Recovery>,
}

/// What a run leaves besides each domain's end.
pub(super) struct RunOutcome {
    pub(super) ends: Vec<(DomainId, String, DomainEnd, CheckpointCount)>,
    pub(super) coverage: CoverageStats,
    pub(super) recoveries: Vec<RecoveryEvent>,
    pub(super) resumptions: Vec<Resumption>,
    pub(super) stop: Option<SystemStop>,
}

/// Runs the domains on `threads` host threads until the system is quiet; returns how
/// each domain ended up, with its name, in no particular order.
pub(super) fn run(
    router: Router,
    threads: usize,
    domains: Vec<Boot>,
    names: HashMap<DomainId, String>,
    process_callees: Vec<DomainId>,
    trace: Option<IpcTrace>,
    spawner: &Spawner<'_>,
) -> RunOutcome {
    let threads = threads.max(1);
    let mut per_thread: Vec<FxHashMap<DomainId, Slot>> =
        (0..threads).map(|_| FxHashMap::default()).collect();
    let mut placed = Vec::new();
    for boot in domains {
        let thread = boot.thread.min(threads - 1);
        placed.push((boot.id, thread));
        per_thread[thread].insert(boot.id, Slot::new(boot.domain, boot.recovery));
    }
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            router,
            turns: Turns::new(threads, placed),
            names,
            killed: FxHashMap::default(),
            process_callees,
            coverage: CoverageStats::new(),
            recoveries: Vec::new(),
            resumptions: Vec::new(),
            stop: None,
        }),
        changed: Condvar::new(),
    });
    // A kill on the control socket wakes the threads (no polling).
    if let Some(hub) = &spawner.options.control {
        let shared = Arc::clone(&shared);
        hub.set_waker(move || {
            // Under the lock, so that no thread misses the wake-up.
            let _state = shared.state.lock();
            shared.changed.notify_all();
        });
    }
    let ends = std::thread::scope(|scope| {
        let handles: Vec<_> = per_thread
            .into_iter()
            .enumerate()
            .map(|(index, slots)| {
                let shared = &*shared;
                let trace = trace.clone();
                std::thread::Builder::new()
                    .name(format!("ankh-vcpu-{index}"))
                    .spawn_scoped(scope, move || {
                        Worker {
                            thread: Thread {
                                shared,
                                index,
                                spawner,
                                pending: Vec::new(),
                            },
                            slots,
                            held: HashSet::new(),
                            held_effects: FxHashMap::default(),
                            holding: None,
                            released: Vec::new(),
                            host_errors: HashMap::new(),
                            trace,
                            turn_ends: Instant::now(),
                            audit: turn_audit::Due::new(spawner.options.substrate),
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
    if let Some(hub) = &spawner.options.control {
        // Waits for a wake-up in progress: then the waker's reference is gone.
        hub.clear_waker();
    }
    let shared = Arc::into_inner(shared).expect("the threads and the waker are gone");
    let state = shared.state.into_inner().expect("no thread panicked");
    let ends = ends
        .into_iter()
        .map(|(id, end, checkpoints)| {
            let end = match (end, state.router.activity(id)) {
                (DomainEnd::Waiting(_), Activity::Waiting(wait)) => DomainEnd::Waiting(*wait),
                (end, _) => end,
            };
            let name = state.names.get(&id).cloned().unwrap_or_default();
            (id, name, end, checkpoints)
        })
        .collect();
    RunOutcome {
        ends,
        coverage: state.coverage,
        recoveries: state.recoveries,
        resumptions: state.resumptions,
        stop: state.stop,
    }
}

/// One host thread: its domains, and its handle on what the threads share.
struct Worker<'a> {
    /// The thread's part of the system (what `recovery` may use while the worker
    /// holds a domain of `slots`).
    thread: Thread<'a>,
    /// (Looked up several times per exit: hashed with Fx, not SipHash; the ids are the
    /// VMM's own.)
    slots: FxHashMap<DomainId, Slot>,
    /// Domains created on this thread that do not run before `SYS_START_DOMAIN`.
    held: HashSet<DomainId>,
    /// Per caller (the process manager), the kernel calls held for the request in
    /// hand (module docs of `system::held`).
    held_effects: FxHashMap<DomainId, HeldEffects>,
    /// The caller whose kernel call is being served with its effect held.
    holding: Option<DomainId>,
    /// How the processes of this thread that ended and were released ended.
    released: Vec<(DomainId, DomainEnd, CheckpointCount)>,
    host_errors: HashMap<DomainId, HostFailure>,
    trace: Option<IpcTrace>,
    /// When the turn of the domain being run ends (this thread's turn in `Turns`,
    /// which only this thread changes, read without the lock).
    turn_ends: Instant,
    /// When the next audit of the turns is due (see `turn_audit`).
    audit: turn_audit::Due,
}

/// A thread's handle on the shared state, apart from its domains.
struct Thread<'a> {
    shared: &'a Shared,
    /// The thread's index.
    index: usize,
    spawner: &'a Spawner<'a>,
    /// Injections that strike as soon as their domain is not running.
    pending: Vec<(DomainId, Injection)>,
}

impl Thread<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().expect("no thread panicked")
    }

    /// Wakes the other threads (after scheduling for them).
    fn notify_others(&self) {
        self.shared.changed.notify_all();
    }

    /// Schedules the domains `woken` (under the lock `state`), waking the other
    /// threads when some of them are theirs.
    fn schedule(&self, state: &mut State, woken: &[DomainId]) {
        self.schedule_at(state, woken, Instant::now());
    }

    /// [`schedule`](Self::schedule) at `now`, a time the caller just read (a clock
    /// read costs 50 to 80 ns on these hosts, and the IPC path has one already).
    fn schedule_at(&self, state: &mut State, woken: &[DomainId], now: Instant) {
        if state.turns.schedule(woken, self.index, now) {
            self.notify_others();
        }
    }
}

impl Worker<'_> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.thread.lock()
    }

    fn run(mut self) -> Vec<(DomainId, DomainEnd, CheckpointCount)> {
        while let Some(work) = self.next_work() {
            match work {
                Work::Run(id, delivery) => self.run_domain(id, delivery),
                Work::Inject(id, injection) => self.inject_now(id, injection),
                Work::AuditTurns => self.audit_turns(),
            }
            if self.lock().turns.end_work() {
                self.thread.notify_others();
            }
        }
        let killed = self.lock().killed.clone();
        let released = std::mem::take(&mut self.released);
        self.slots
            .into_iter()
            .map(|(id, mut slot)| {
                if let Some(by) = killed.get(&id) {
                    if !matches!(slot.domain.state(), DomainState::Stopped(_)) {
                        slot.domain.fail(DomainFault::Killed { by: *by });
                    }
                }
                let end = match (self.host_errors.get(&id), slot.domain.state()) {
                    (Some(error), _) => DomainEnd::HostError(error.clone()),
                    (None, DomainState::Stopped(exit)) => DomainEnd::Stopped(exit.clone()),
                    // Refined by `run` from the router's view.
                    (None, DomainState::Ready) => DomainEnd::Waiting(Wait::Receive { from: None }),
                };
                let checkpoints = slot
                    .recovery
                    .as_ref()
                    .map(|recovery| recovery.checkpoint_count(&slot.domain))
                    .unwrap_or_default();
                (id, end, checkpoints)
            })
            .chain(released)
            .collect()
    }

    /// Waits for work on this thread: an injection whose domain is not running, or a
    /// domain ready to run; `None` when the system is quiet.
    fn next_work(&mut self) -> Option<Work> {
        let shared = self.thread.shared;
        let index = self.thread.index;
        let hub = self.thread.spawner.options.control.clone();
        let mut state = shared.state.lock().expect("no thread panicked");
        loop {
            if state.turns.done() {
                return None;
            }
            if let Some(hub) = &hub {
                for (&id, slot) in &self.slots {
                    let now = [When::Now, When::Idle];
                    if let Some(injection) = hub.take_kill(slot.domain.name(), &now) {
                        self.thread.pending.push((id, injection));
                    }
                }
            }
            let slots = &self.slots;
            let idle = |id: &DomainId| {
                slots
                    .get(id)
                    .and_then(|slot| slot.recovery.as_ref())
                    .is_none_or(Recovery::idle)
            };
            // Strike at a request boundary (blocked in receive, no request in hand:
            // the checkpoint taken there is exact), or, for `now`, also in a call made
            // for the request in hand. Not in a call made while handling a one-way
            // message: there is no request to roll back to the start of.
            let serving_a_request = |id: &DomainId| {
                slots
                    .get(id)
                    .and_then(|slot| slot.recovery.as_ref())
                    .is_some_and(Recovery::serving_a_request)
            };
            let strikes = |(id, injection): &(DomainId, Injection)| match state.router.activity(*id)
            {
                Activity::Waiting(Wait::Receive { from: None }) => idle(id),
                Activity::Waiting(Wait::Reply { .. }) => {
                    injection.when == When::Now && serving_a_request(id)
                }
                _ => false,
            };
            if let Some(at) = self.thread.pending.iter().position(strikes) {
                let (id, injection) = self.thread.pending.remove(at);
                state.turns.begin_work();
                return Some(Work::Inject(id, injection));
            }
            if self.audit.now() {
                state.turns.begin_work();
                return Some(Work::AuditTurns);
            }
            if let Some((id, turn_ends)) = state.turns.next_ready(index) {
                self.turn_ends = turn_ends;
                let delivery = state.router.take_delivery(id);
                return Some(Work::Run(id, delivery));
            }
            state = shared.changed.wait(state).expect("no thread panicked");
        }
    }

    /// Injects `kind` into domain `id`, which is not running: an idle server is first
    /// checkpointed where it stands; then it crashes, or runs into its hang or its
    /// broken stack (at once, or when its reply comes if it is blocked in a call).
    fn inject_now(&mut self, id: DomainId, injection: Injection) {
        let waits_for_a_message = self.thread.at_request_boundary(id);
        let Some(slot) = self.slots.get_mut(&id) else {
            return;
        };
        if matches!(slot.domain.state(), DomainState::Stopped(_)) {
            return;
        }
        if let Some(recovery) = slot.recovery.as_mut() {
            if waits_for_a_message && injection.kind != Kind::Crash {
                // It would run into it only at its next message (see
                // `Recovery::defer_sabotage`).
                recovery.defer_sabotage(injection);
                return;
            }
            recovery.checkpoint_idle(&mut slot.domain, slot.queues.as_ref());
        }
        if self.sabotage(id, injection) == Next::Run {
            self.run_domain(id, None);
        }
    }

    /// Injects `kind` into domain `id` where it stands: whether it must run on (into
    /// its hang or its broken stack) or was stopped (a crash, recovered or not).
    fn sabotage(&mut self, id: DomainId, injection: Injection) -> Next {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let domain = &mut slot.domain;
        let done = match injection.kind {
            Kind::Crash => Err(()),
            Kind::Hang => domain.inject_hang().map_err(|_| ()),
            Kind::Corrupt => domain.corrupt_stack().map_err(|_| ()),
        };
        match done {
            Ok(()) => {
                if let (Some(recovery), true) = (slot.recovery.as_mut(), injection.operator) {
                    recovery.sabotaged();
                }
                Next::Run
            }
            Err(()) => {
                self.fail(id, DomainFault::Injected("hot-kill"));
                Next::Block
            }
        }
    }

    /// Runs domain `id` until it blocks or stops.
    fn run_domain(&mut self, id: DomainId, delivery: Option<Box<Message>>) {
        match self.slots.get(&id) {
            Some(slot) if !matches!(slot.domain.state(), DomainState::Stopped(_)) => {}
            // Stopped (killed) after it was queued to run, or released since.
            _ => return,
        }
        // A domain blocked in a receive or a call resumes only with the message it
        // waits for: resumed without one, it would find none (its runtime stops on
        // that, a guest panic). A turn without one leaves it waiting: an injection
        // that left it blocked in a call (it runs into its hang or broken stack when
        // its reply comes), or a turn it was given before a rollback put it back at a
        // boundary (random-timing kill storms found both).
        if delivery.is_none() && matches!(self.lock().router.activity(id), Activity::Waiting(_)) {
            return;
        }
        if let Some(message) = delivery {
            match self.deliver(id, &message) {
                Ok(None) => {}
                Ok(Some(injection)) => {
                    if self.sabotage(id, injection) == Next::Block {
                        return;
                    }
                }
                Err(fault) => return self.fail(id, fault.into()),
            }
        }
        loop {
            let slot = self
                .slots
                .get_mut(&id)
                .expect("a thread runs only its domains");
            let tracing = self.trace.is_some();
            slot.domain.set_turn_end(Some(self.turn_ends));
            // Run time counts toward coverage, which only recoverable servers have,
            // and only with a request in hand (the window does not change in a run).
            let counts_run = slot.recovery.as_ref().is_some_and(Recovery::counts_run);
            let started = counts_run.then(crate::tsc::now);
            let resumed = slot.domain.resume(|call| tracing && call == Hypercall::Nop);
            // Instructions single-stepped in this run (a profile), taken either way so
            // that a run outside a request is not counted into the next one.
            let stepped = slot.domain.take_profiled_steps();
            if let (Some(recovery), Some(started)) = (slot.recovery.as_mut(), started) {
                recovery.account_run(crate::tsc::now().saturating_sub(started), stepped);
            }
            let event = match resumed {
                Ok(event) => event,
                Err(error) => {
                    let failure = HostFailure(Arc::new(error));
                    self.host_errors.insert(id, failure);
                    return self.stopped(id);
                }
            };
            let killed_by = self.lock().killed.remove(&id);
            if let Some(by) = killed_by {
                // Killed from another thread while it ran.
                let slot = self.slots.get_mut(&id).expect("own domain");
                slot.domain.fail(DomainFault::Killed { by });
                self.release(id);
                return;
            }
            let next = match event {
                RunEvent::Stopped(_) => {
                    if !self.try_recover(id) {
                        self.stopped(id);
                    }
                    return;
                }
                RunEvent::Paused(_) => {
                    if let Some(trace) = &self.trace {
                        trace(TraceEvent::Nop, id, &self.slots[&id].domain);
                    }
                    Ok(Next::Run)
                }
                RunEvent::Preempted => Ok(Next::Run),
                RunEvent::IpcSetup(address) => self.setup(id, address).map(|()| Next::Run),
                RunEvent::Ipc(value) => {
                    if let Some(trace) = &self.trace {
                        trace(TraceEvent::Ipc, id, &self.slots[&id].domain);
                    }
                    self.ipc(id, value)
                }
            };
            match next {
                Ok(Next::Run) if self.preempt(id) => return,
                Ok(Next::Run) => {}
                Ok(Next::Block) => return,
                Err(fault) => return self.fail(id, fault.into()),
            }
        }
    }

    /// Ends the turn of running domain `id` when it is over and another domain of
    /// this thread is ready: `id` goes to the back of the ready queue. Returns whether
    /// it did. With nobody else ready, a new turn starts.
    fn preempt(&mut self, id: DomainId) -> bool {
        let now = Instant::now();
        if now < self.turn_ends {
            return false;
        }
        let index = self.thread.index;
        let turn_over = self.lock().turns.turn_over(index, id, now);
        match turn_over {
            Some(turn_ends) => {
                self.turn_ends = turn_ends;
                false
            }
            None => true,
        }
    }

    fn setup(&mut self, id: DomainId, address: u64) -> Result<(), IpcFault> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        if slot.queues.is_some() {
            return Err(IpcFault::NotSetUp("set up twice"));
        }
        slot.queues = Some(DomainQueues::setup_at(slot.domain.memory(), address)?);
        Ok(())
    }

    fn ipc(&mut self, id: DomainId, value: u32) -> Result<Next, IpcFault> {
        let (op, source) = IpcOp::decode(value)
            .ok_or(IpcFault::BadOperation(OperationFault::Undecodable(value)))?;
        let slot = self.slots.get_mut(&id).expect("own domain");
        let queues = slot
            .queues
            .as_mut()
            .ok_or(IpcFault::NotSetUp("before IpcSetup"))?;
        let messages = queues.drain_tx(slot.domain.memory())?;
        let mut last_request = None;
        let mut strike = None;
        for message in messages {
            let request = message.header.request_id;
            let replied = |held: &HeldEffects| held.replies_to(request);
            if message.header.opcode == REPLY && self.held_effects.get(&id).is_some_and(replied) {
                // A second answer to a request whose first one is held: the router
                // would have refused it had the first gone out.
                return Err(IpcFault::ReplyWithoutCaller(request));
            }
            let held = self.holds(id, &message);
            strike = strike.or(self.on_outgoing(id, &message, held));
            // What it held is carried out before a message that exposes its state
            // leaves (its answer included): whoever sees the message sees the effects.
            self.release_if_exposed(id);
            if held && message.header.opcode == REPLY {
                // A reply to another request leaves once its state is exposed.
                self.held_for(id).hold(Effect::Reply(Box::new(message)));
                continue;
            }
            if message.header.destination == VMM_DOMAIN && message.header.opcode != REPLY {
                let now = Instant::now();
                let request = self
                    .lock()
                    .router
                    .kernel_request(id, message.header.opcode, now)?;
                self.holding = held.then_some(id);
                let reply = kernel::serve(self, id, &message);
                self.holding = None;
                let mut state = self.lock();
                let woken = state.router.kernel_reply(request, reply);
                self.thread.schedule(&mut state, &woken);
                last_request = Some(request);
            } else {
                let now = Instant::now();
                let mut state = self.lock();
                let (woken, last) = state.router.submit(id, [message], now)?;
                self.thread.schedule_at(&mut state, &woken, now);
                last_request = last.or(last_request);
            }
        }
        if let Some(injection) = strike {
            // Its window just closed: the messages are on their way.
            if self.sabotage(id, injection) == Next::Block {
                return Ok(Next::Block);
            }
        }
        if op == IpcOp::Receive && source == VMM_DOMAIN {
            // It waits for a new message, the request in hand answered or parked.
            self.release_held(id);
        }
        let outcome = self.lock().router.wait(id, op, source, last_request)?;
        match outcome {
            WaitOutcome::Continue => Ok(Next::Run),
            WaitOutcome::Deliver(message) => match self.deliver(id, &message)? {
                None => Ok(Next::Run),
                Some(injection) => Ok(self.sabotage(id, injection)),
            },
            WaitOutcome::Blocked => Ok(Next::Block),
        }
    }

    /// Writes `message` into `id`'s RX queue; returns the fault to inject right now,
    /// if one is planned (the caller injects it before resuming the domain).
    fn deliver(&mut self, id: DomainId, message: &Message) -> Result<Option<Injection>, IpcFault> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let kill = match slot.recovery.as_mut() {
            Some(recovery) => recovery.before_delivery(
                id,
                &mut slot.domain,
                slot.queues.as_ref(),
                message,
                &mut self.thread,
            ),
            None => None,
        };
        let queues = slot.queues.as_mut().ok_or(IpcFault::NoReceiveBuffer)?;
        queues.deliver(slot.domain.memory(), message)?;
        Ok(kill)
    }

    /// `message` leaves domain `id`: a server's recovery window may close. Returns the
    /// fault to inject once the message is on its way, if one waited for that.
    fn on_outgoing(&mut self, id: DomainId, message: &Message, held: bool) -> Option<Injection> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut()?;
        recovery.on_outgoing(id, slot.domain.name(), message, held, &mut self.thread)
    }

    /// Domain `id` stopped: a server is recovered if its policy allows; returns
    /// whether it was.
    fn try_recover(&mut self, id: DomainId) -> bool {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let Some(recovery) = slot.recovery.as_mut() else {
            return false;
        };
        let recovered =
            recovery.try_recover(id, &mut slot.domain, &mut slot.queues, &mut self.thread);
        if recovered {
            // Rolled back or restarted: the request in hand is undone, and so is what
            // the VMM held for it.
            self.undo_held(id);
        }
        recovered
    }

    fn fail(&mut self, id: DomainId, fault: DomainFault) {
        let slot = self.slots.get_mut(&id).expect("own domain");
        slot.domain.fail(fault);
        if !self.try_recover(id) {
            self.stopped(id);
        }
    }

    /// Tells the router the domain is gone and schedules whoever that wakes.
    fn stopped(&mut self, id: DomainId) {
        let options = self.thread.spawner.options;
        if let (Some(hub), Some(_)) = (&options.control, &self.slots[&id].recovery) {
            hub.update(self.slots[&id].domain.name(), |stats| {
                stats.state = "stopped"
            });
        }
        let cause = match self.slots[&id].domain.state() {
            DomainState::Stopped(exit) => ExitCause::of(exit),
            DomainState::Ready => ExitCause::of(&crate::DomainExit::Halted),
        };
        let mut state = self.lock();
        let woken = process_manager::domain_stopped(&mut state.router, id, cause);
        self.thread.schedule(&mut state, &woken);
        drop(state);
        self.release(id);
    }

    /// Releases process `id`, which stopped for good: its VM, vCPU, memory and queues
    /// go now (not when the system ends), and only how it ended is kept. Servers stay
    /// (they are recovered, or the report shows their last state).
    fn release(&mut self, id: DomainId) {
        let is_process = self
            .slots
            .get(&id)
            .is_some_and(|slot| slot.recovery.is_none());
        if !is_process {
            return;
        }
        let Some(slot) = self.slots.remove(&id) else {
            return;
        };
        self.held.remove(&id);
        let end = match (self.host_errors.remove(&id), slot.domain.state()) {
            (Some(error), _) => DomainEnd::HostError(error),
            (None, DomainState::Stopped(exit)) => DomainEnd::Stopped(exit.clone()),
            (None, DomainState::Ready) => DomainEnd::Stopped(crate::DomainExit::Halted),
        };
        self.released.push((id, end, CheckpointCount::default()));
    }
}
