//! Recovery of server domains: checkpoints at request boundaries, the recovery
//! window of the request in hand, and what to do when the domain faults (decided by
//! `ankh_recovery`, carried out here).

use std::time::Instant;

use std::hash::{Hash, Hasher};

use ankh_domains::Policy;
use ankh_recovery::{
    decide, has_window, Action, Escalate, Escalation, EscalationConfig, RecoveryEvent,
    RecoveryWindow, ShutdownReason, WindowState, ONE_WAY,
};
use virtio_seep::message::DomainId;
use virtio_seep::opcode::{self, SeepClass, REPLY};

use crate::ipc::router::{Activity, Wait};

use super::injection::{Injection, Kind, When};
use super::scheduler::Worker;
use super::{CheckpointCount, Resumption, SystemStop};
use crate::domain::{Domain, DomainConfig, DomainState};
use crate::fault::{DomainExit, DomainFault};
use crate::image::GuestImage;
use crate::ipc::queues::QueuesSnapshot;
use crate::ipc::Message;

/// What a recoverable domain carries besides the domain itself.
pub(super) struct Recovery {
    policy: Policy,
    window: RecoveryWindow,
    /// The queues at the last checkpoint (`None`: no checkpoint yet).
    snapshot: Option<QueuesSnapshot>,
    /// What a restart boots again.
    image: GuestImage,
    config: DomainConfig,
    /// The evidence that recovery does (not) help.
    escalation: Escalation,
    /// The last checkpoint failed: no rollback until one succeeds (Hyperlight's
    /// poisoned sandbox). `snapshot` is `None` then.
    poisoned: bool,
    /// A fingerprint of the request in hand (caller, opcode, payload), for the
    /// poison-request evidence.
    in_hand: Option<u64>,
    /// The one-way message in hand, kept until the next message boundary so that a
    /// fault while handling it can replay it once.
    one_way: Option<OneWay>,
    /// The one-way message requeued after a rollback comes next: it is the replay.
    replay_next: bool,
    /// The domain answered the request in hand and runs on without having blocked
    /// again: its state after the answer is exposed, and the last checkpoint (at the
    /// start of that request) is no longer a consistent point to go back to.
    answered_and_running: Option<u64>,
    /// Requests delivered so far.
    requests: u64,
    /// Checkpoints taken so far, and the pages they copied.
    checkpoints: CheckpointCount,
    /// Planned injections: each strikes once its request (1-based) is delivered.
    kills: Vec<(u64, Injection)>,
    /// An injection waiting for the window of the request in hand to close.
    armed: Option<Kind>,
    /// When the last fault was detected, until the domain replies again.
    faulted_at: Option<Instant>,
}

/// A one-way message a server has in hand.
struct OneWay {
    message: Message,
    /// It is already the replay (after a fault while handling it): a second fault
    /// drops it.
    replayed: bool,
}

/// What tells a request apart from another for the poison-request evidence: who sent
/// it, what it asks, and its inline payload.
fn fingerprint(message: &Message) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.header.source.hash(&mut hasher);
    message.header.opcode.hash(&mut hasher);
    message.payload.hash(&mut hasher);
    hasher.finish()
}

impl Recovery {
    /// The checkpoints taken so far.
    pub(super) fn checkpoint_count(&self) -> CheckpointCount {
        self.checkpoints
    }

    /// Recovery under `policy` for a domain booted from `image` with `config`.
    pub(super) fn new(policy: Policy, image: GuestImage, config: DomainConfig) -> Recovery {
        Recovery {
            policy,
            window: RecoveryWindow::new(),
            snapshot: None,
            image,
            config,
            escalation: Escalation::new(EscalationConfig::default()),
            poisoned: false,
            in_hand: None,
            one_way: None,
            replay_next: false,
            answered_and_running: None,
            requests: 0,
            checkpoints: CheckpointCount::default(),
            kills: Vec::new(),
            armed: None,
            faulted_at: None,
        }
    }

    /// Crashes the domain right after its `n`-th request is delivered, for each `n`
    /// (hot-kill mid-request).
    pub(super) fn kill_at(mut self, kills: impl IntoIterator<Item = (u64, Injection)>) -> Recovery {
        self.kills.extend(kills);
        self
    }

    /// Whether the domain has no request in hand (it is at a request boundary).
    pub(super) fn idle(&self) -> bool {
        self.window.request().is_none()
    }

    /// Whether the domain takes checkpoints (the policy has a recovery window).
    pub(super) fn checkpoints(&self) -> bool {
        has_window(self.policy)
    }
}

impl Worker<'_> {
    /// Before `message` is written into `id`'s queue: at a message boundary (a request
    /// or a one-way message, not a reply to a call of its own), a recoverable domain
    /// takes its checkpoint and opens the window. Returns the fault to inject right
    /// after this delivery (hot-kill mid-request), if one is planned; injections planned
    /// for later are armed.
    pub(super) fn before_delivery(&mut self, id: DomainId, message: &Message) -> Option<Kind> {
        if message.header.opcode == REPLY {
            return None;
        }
        let is_request = message.header.request_id != 0;
        let budget = self.spawner.options.request_budget;
        let slot = self.slots.get_mut(&id).expect("own domain");
        let (Some(recovery), Some(_)) = (slot.recovery.as_mut(), slot.queues.as_ref()) else {
            return None;
        };
        // Every message a server handles gets a fresh run-time budget.
        slot.domain.set_request_budget(Some(budget));
        let hub = self.spawner.options.control.as_ref();
        let name = slot.domain.name().to_owned();
        let mut kill = None;
        if is_request {
            recovery.requests += 1;
            let mut strikes: Vec<Injection> = recovery
                .kills
                .iter()
                .filter(|(at, _)| *at == recovery.requests)
                .map(|(_, injection)| *injection)
                .collect();
            let later = [When::MidRequest, When::WindowClosed];
            strikes.extend(hub.and_then(|hub| hub.take_kill(&name, &later)));
            for injection in strikes {
                match injection.when {
                    When::MidRequest => kill = Some(injection.kind),
                    When::WindowClosed => recovery.armed = Some(injection.kind),
                    When::Now | When::Idle => self.pending.push((id, injection)),
                }
            }
        }
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("checked above");
        let queues = slot.queues.as_ref().expect("checked above");
        recovery.answered_and_running = None;
        let mut pages = None;
        if recovery.checkpoints() {
            // Whatever was in hand (a parked request, a one-way message) ends here.
            let finished = recovery.window.end_request();
            match slot.domain.checkpoint() {
                Ok(copied) => {
                    recovery.snapshot = Some(queues.snapshot());
                    recovery.poisoned = false;
                    pages = Some(copied as u64);
                    recovery.checkpoints += CheckpointCount {
                        checkpoints: 1,
                        pages: copied as u64,
                    };
                }
                Err(error) => {
                    recovery.snapshot = None;
                    recovery.poisoned = true;
                    tracing::warn!(
                        "warning: checkpoint of {name} failed ({error}): it cannot be rolled \
                         back until a checkpoint succeeds"
                    );
                }
            }
            let request = if is_request {
                message.header.request_id
            } else {
                ONE_WAY
            };
            recovery.window.on_request_delivered(request);
            recovery.in_hand = is_request.then(|| fingerprint(message));
            recovery.one_way = (!is_request).then(|| OneWay {
                message: message.clone(),
                replayed: std::mem::take(&mut recovery.replay_next),
            });
            self.record_finished(id, finished);
        }
        if let (Some(hub), true) = (hub, is_request) {
            hub.update(&name, |stats| {
                stats.requests += 1;
                if let Some(pages) = pages {
                    stats.checkpoints += 1;
                    stats.checkpoint_pages += pages;
                }
            });
        }
        kill
    }

    /// `message` leaves recoverable domain `id`: it may close the window. Returns the
    /// fault to inject once the message is on its way, when one was waiting for the
    /// window to close.
    pub(super) fn on_outgoing(&mut self, id: DomainId, message: &Message) -> Option<Kind> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut()?;
        let policy = recovery.policy;
        let in_hand = recovery.window.request().is_some();
        if message.header.opcode == REPLY {
            if let Some(at) = recovery.faulted_at.take() {
                let domain = slot.domain.name().to_owned();
                let after = at.elapsed();
                self.lock().resumptions.push(Resumption { domain, after });
            }
        }
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("checked above");
        let class = if message.header.opcode == REPLY {
            if recovery.window.state().answerable() == Some(message.header.request_id) {
                let finished = recovery.window.on_reply_sent();
                recovery.escalation.record_progress();
                recovery.answered_and_running = Some(message.header.request_id);
                self.record_finished(id, finished);
                return None;
            }
            recovery.window.on_reply_to_other(policy);
            SeepClass::External
        } else {
            let class = opcode::lookup(message.header.opcode)?.class;
            recovery.window.on_outgoing(class, policy);
            class
        };
        // An armed injection waits, across requests, for the first message that
        // exposes state mid-request: the one that closes the window under the enhanced
        // policy (under pessimistic the window may have closed earlier; under naive it
        // never closes).
        let exposes = matches!(class, SeepClass::Update | SeepClass::External);
        (in_hand && exposes)
            .then(|| recovery.armed.take())
            .flatten()
    }

    /// Takes a checkpoint of idle domain `id` where it stands (before a fault is
    /// injected into it, so that recovering it loses nothing).
    pub(super) fn checkpoint_idle(&mut self, id: DomainId) {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let (Some(recovery), Some(queues)) = (slot.recovery.as_mut(), slot.queues.as_ref()) else {
            return;
        };
        if recovery.checkpoints() && recovery.idle() {
            match slot.domain.checkpoint() {
                Ok(_) => {
                    recovery.snapshot = Some(queues.snapshot());
                    recovery.poisoned = false;
                    recovery.answered_and_running = None;
                }
                Err(_) => {
                    recovery.snapshot = None;
                    recovery.poisoned = true;
                }
            }
        }
    }

    /// Domain `id` stopped. A recoverable server that faulted is rolled back,
    /// restarted, or stops the system, as its policy and the evidence say; returns
    /// true when it was recovered (it must not be treated as stopped). The event
    /// records what was done, which may differ from what was decided (a rollback that
    /// was refused, a restart that failed).
    pub(super) fn try_recover(&mut self, id: DomainId) -> bool {
        let start = Instant::now();
        let at_boundary = matches!(
            self.lock().router.activity(id),
            Activity::Waiting(Wait::Receive { from: None })
        );
        let fallback = self.spawner.options.fallback_restart;
        let slot = self.slots.get_mut(&id).expect("own domain");
        let fault = match slot.domain.state() {
            DomainState::Stopped(DomainExit::Faulted(fault)) => fault.clone(),
            _ => return false,
        };
        let Some(recovery) = slot.recovery.as_mut() else {
            return false;
        };
        if matches!(fault, DomainFault::Killed { .. }) {
            return false;
        }
        let mut window = recovery.window.state();
        if let (WindowState::Idle, Some(request), false) =
            (window, recovery.answered_and_running, at_boundary)
        {
            // It answered its request and ran on: that answer exposed its state.
            window = WindowState::Closed {
                request,
                by: SeepClass::Reply,
            };
        }
        recovery.faulted_at = Some(start);
        // Evidence about recovery: faults while serving a message, other than the
        // operator's crash (module docs of `ankh_recovery::escalation`).
        let evidence = window.request().is_some() && !matches!(fault, DomainFault::Injected(_));
        let escalate = match evidence {
            true => recovery.escalation.record_fault(recovery.in_hand),
            false => Escalate::None,
        };
        let may_lose_state = recovery.policy == Policy::Stateless || fallback;
        let mut decided = escalate.apply(decide(recovery.policy, window, fallback), may_lose_state);
        let mut note = None;
        if window.request() == Some(ONE_WAY) && matches!(decided, Action::Rollback { .. }) {
            // Nobody waits for an answer to a one-way message.
            decided = Action::Rollback { error_reply: false };
        }
        if matches!(decided, Action::Rollback { .. }) && recovery.snapshot.is_none() {
            decided = match (recovery.poisoned, may_lose_state) {
                // Faulted before its first checkpoint: it has no state to lose.
                (false, _) | (true, true) => Action::Restart,
                (true, false) => Action::Shutdown {
                    reason: ShutdownReason::CheckpointFailed,
                },
            };
            if recovery.poisoned {
                note = Some("its last checkpoint failed".to_owned());
            }
        }
        let (action, outcome_note) = self.carry_out(id, decided, window, &fault, may_lose_state);
        let note = match (note, outcome_note) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        let event = RecoveryEvent {
            domain_id: id,
            domain_name: self.slots[&id].domain.name().to_owned(),
            request_id: window.answerable(),
            fault: fault.kind().to_owned(),
            action,
            decided,
            note,
            latency: start.elapsed(),
            window,
        };
        tracing::info!("{event}");
        if let Some(hub) = &self.spawner.options.control {
            hub.update(&event.domain_name, |stats| {
                *stats
                    .recoveries
                    .entry(event.action.to_string())
                    .or_default() += 1;
            });
        }
        let recovered = matches!(action, Action::Rollback { .. } | Action::Restart);
        self.lock().recoveries.push(event);
        recovered
    }

    /// Carries out `decided` for faulted domain `id`; returns what was done and a note
    /// when it differs from the decision or concerns the one-way message in hand.
    fn carry_out(
        &mut self,
        id: DomainId,
        decided: Action,
        window: WindowState,
        fault: &DomainFault,
        may_lose_state: bool,
    ) -> (Action, Option<String>) {
        match decided {
            Action::Rollback { .. } => match self.roll_back(id, window) {
                Ok(note) => (decided, note),
                Err(why) if may_lose_state => match self.restart(id) {
                    Ok(()) => (Action::Restart, Some(format!("rollback failed: {why}"))),
                    Err(error) => self.give_up(id, format!("rollback failed: {why}; {error}")),
                },
                Err(why) => {
                    let reason = ShutdownReason::RollbackRefused;
                    self.stop_system(SystemStop::Shutdown {
                        domain: id,
                        reason: reason.to_string(),
                    });
                    (
                        Action::Shutdown { reason },
                        Some(format!("rollback failed: {why}")),
                    )
                }
            },
            Action::Restart => match self.restart(id) {
                Ok(()) => (Action::Restart, None),
                Err(error) => self.give_up(id, error),
            },
            Action::Halt => {
                self.stop_system(SystemStop::Halted {
                    domain: id,
                    fault: fault.to_string(),
                });
                (Action::Halt, None)
            }
            Action::Shutdown { reason } => {
                self.stop_system(SystemStop::Shutdown {
                    domain: id,
                    reason: reason.to_string(),
                });
                (decided, None)
            }
        }
    }

    /// A restart failed: the server is gone and the system cannot stay consistent.
    fn give_up(&mut self, id: DomainId, why: String) -> (Action, Option<String>) {
        let reason = ShutdownReason::RestartFailed;
        self.stop_system(SystemStop::Shutdown {
            domain: id,
            reason: format!("{reason}: {why}"),
        });
        (Action::Shutdown { reason }, Some(why))
    }

    /// A request of `id` finished in window state `finished`: coverage and status.
    fn record_finished(&mut self, id: DomainId, finished: WindowState) {
        if finished.answerable().is_none() {
            return;
        }
        self.lock().coverage.record(id, finished);
        if let Some(hub) = &self.spawner.options.control {
            hub.update(self.slots[&id].domain.name(), |stats| {
                stats.finished += 1;
                stats.finished_in_window += u64::from(finished.is_open());
            });
        }
    }

    /// Rolls `id` back to its last checkpoint. The request in hand (per `window`) is
    /// answered `ERESTART`; a one-way message in hand is replayed once, and dropped if
    /// it faults the domain again. Returns a note on the one-way message, or why the
    /// rollback could not be done (the domain is then untouched).
    fn roll_back(&mut self, id: DomainId, window: WindowState) -> Result<Option<String>, String> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("recoverable");
        let snapshot = recovery.snapshot.as_ref().ok_or("no checkpoint")?;
        slot.domain.rollback().map_err(|e| e.to_string())?;
        if let Some(queues) = slot.queues.as_mut() {
            queues.restore(snapshot);
        }
        recovery.window.end_request();
        recovery.answered_and_running = None;
        let mut note = None;
        let replay = match (window.request(), recovery.one_way.take()) {
            (Some(ONE_WAY), Some(one_way)) if !one_way.replayed => {
                recovery.replay_next = true;
                note = Some("the one-way message in hand is replayed once".to_owned());
                Some(one_way.message)
            }
            (Some(ONE_WAY), Some(_)) => {
                note = Some("the one-way message in hand faulted it twice: dropped".to_owned());
                None
            }
            _ => None,
        };
        let mut state = self.lock();
        if let Some(message) = replay {
            state.router.requeue_front(id, message);
        }
        let woken = state.router.recovered(id, window.answerable());
        if state.schedule(&woken, self.index) {
            self.notify_others();
        }
        Ok(note)
    }

    fn restart(&mut self, id: DomainId) -> Result<(), String> {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("recoverable");
        let console = (self.spawner.options.console)(&recovery.config.name);
        let domain = Domain::create(
            self.spawner.host,
            &recovery.config,
            &recovery.image,
            console,
        )
        .map_err(|error| format!("restart failed: {error}"))?;
        slot.domain = domain;
        slot.queues = None;
        recovery.window = RecoveryWindow::new();
        recovery.snapshot = None;
        recovery.poisoned = false;
        recovery.one_way = None;
        recovery.replay_next = false;
        recovery.answered_and_running = None;
        let mut state = self.lock();
        let woken = state.router.restarted(id);
        if state.schedule(&woken, self.index) {
            self.notify_others();
        }
        Ok(())
    }

    /// Ends the whole system run (a halt or a controlled shutdown).
    fn stop_system(&mut self, stop: SystemStop) {
        let mut state = self.lock();
        if state.stop.is_none() {
            state.stop = Some(stop);
        }
        state.end();
        self.notify_others();
    }
}
