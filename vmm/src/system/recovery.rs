//! Recovery of server domains: checkpoints at request boundaries, the recovery
//! window of the request in hand, and what to do when the domain faults (decided by
//! `ankh_recovery`, carried out here).

use std::time::Instant;

use ankh_domains::Policy;
use ankh_recovery::{
    decide, has_window, Action, Escalation, EscalationConfig, RecoveryEvent, RecoveryWindow,
    WindowState,
};
use virtio_seep::message::DomainId;
use virtio_seep::opcode::{self, SeepClass, REPLY};

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
    /// Faults in a row: a domain that keeps faulting is restarted, then the system
    /// is shut down.
    escalation: Escalation,
    /// When recovery started watching (escalation counts time from here).
    born: Instant,
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
            born: Instant::now(),
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
    /// Before `message` is written into `id`'s queue: at a request boundary, a
    /// recoverable domain takes its checkpoint and opens the window. Returns the fault
    /// to inject right after this delivery (hot-kill mid-request), if one is planned;
    /// injections planned for later are armed.
    pub(super) fn before_delivery(&mut self, id: DomainId, message: &Message) -> Option<Kind> {
        let is_request = message.header.opcode != REPLY && message.header.request_id != 0;
        let budget = self.spawner.options.request_budget;
        let slot = self.slots.get_mut(&id).expect("own domain");
        let (Some(recovery), Some(queues)) = (slot.recovery.as_mut(), slot.queues.as_ref()) else {
            return None;
        };
        // Every message a server handles gets a fresh run-time budget.
        if message.header.opcode != REPLY {
            slot.domain.set_request_budget(Some(budget));
        }
        if !is_request {
            return None;
        }
        recovery.requests += 1;
        let hub = self.spawner.options.control.as_ref();
        let name = slot.domain.name().to_owned();
        let mut strikes: Vec<Injection> = recovery
            .kills
            .iter()
            .filter(|(at, _)| *at == recovery.requests)
            .map(|(_, injection)| *injection)
            .collect();
        let later = [When::MidRequest, When::WindowClosed];
        strikes.extend(hub.and_then(|hub| hub.take_kill(&name, &later)));
        let mut kill = None;
        for injection in strikes {
            match injection.when {
                When::MidRequest => kill = Some(injection.kind),
                When::WindowClosed => recovery.armed = Some(injection.kind),
                When::Now | When::Idle => self.pending.push((id, injection)),
            }
        }
        let mut pages = None;
        if recovery.checkpoints() {
            if let Ok(copied) = slot.domain.checkpoint() {
                recovery.snapshot = Some(queues.snapshot());
                pages = Some(copied as u64);
                recovery.checkpoints += CheckpointCount {
                    checkpoints: 1,
                    pages: copied as u64,
                };
            }
            let finished = recovery
                .window
                .on_request_delivered(message.header.request_id);
            self.record_finished(id, finished);
        }
        if let Some(hub) = hub {
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
            if recovery.window.request() == Some(message.header.request_id) {
                let finished = recovery.window.on_reply_sent();
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
        if recovery.checkpoints() && recovery.idle() && slot.domain.checkpoint().is_ok() {
            recovery.snapshot = Some(queues.snapshot());
        }
    }

    /// Domain `id` stopped. A recoverable server that faulted is rolled back,
    /// restarted, or stops the system, as its policy says; returns true when it was
    /// recovered (it must not be treated as stopped).
    pub(super) fn try_recover(&mut self, id: DomainId) -> bool {
        let start = Instant::now();
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
        let window = recovery.window.state();
        recovery.faulted_at = Some(start);
        let escalate = recovery
            .escalation
            .record_fault(start.duration_since(recovery.born));
        let fallback = self.spawner.options.fallback_restart;
        let decided = decide(recovery.policy, window, fallback);
        // Escalation turns repeated rollbacks into a restart, then a shutdown. A
        // stateless domain (a driver) is restarted every time instead, as MINIX 3's
        // reincarnation server does: its state is rebuilt from its clients, whose
        // re-issues are bounded (a driver that fails every request costs its client
        // an EIO, not a loop).
        let mut action = if recovery.policy == Policy::Stateless {
            decided
        } else {
            escalate.apply(decided, recovery.escalation.config())
        };
        if matches!(action, Action::Rollback { .. }) && recovery.snapshot.is_none() {
            // Faulted before its first request: nothing to roll back to.
            action = Action::Restart;
        }
        let done = match action {
            Action::Rollback { error_reply } => self.roll_back(id, error_reply.then_some(window)),
            Action::Restart => self.restart(id),
            Action::Halt => {
                self.stop_system(SystemStop::Halted {
                    domain: id,
                    fault: fault.to_string(),
                });
                false
            }
            Action::Shutdown { reason } => {
                self.stop_system(SystemStop::Shutdown {
                    domain: id,
                    reason: reason.to_string(),
                });
                false
            }
        };
        let event = RecoveryEvent {
            domain_id: id,
            domain_name: self.slots[&id].domain.name().to_owned(),
            request_id: window.request(),
            fault: fault.kind().to_owned(),
            action,
            latency: start.elapsed(),
            window,
        };
        println!("{event}");
        if let Some(hub) = &self.spawner.options.control {
            hub.update(&event.domain_name, |stats| {
                *stats
                    .recoveries
                    .entry(event.action.to_string())
                    .or_default() += 1;
            });
        }
        self.lock().recoveries.push(event);
        done
    }

    /// A request of `id` finished in window state `finished`: coverage and status.
    fn record_finished(&mut self, id: DomainId, finished: WindowState) {
        if finished.request().is_none() {
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

    fn roll_back(&mut self, id: DomainId, interrupted: Option<WindowState>) -> bool {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("recoverable");
        if slot.domain.rollback().is_err() {
            return self.restart(id);
        }
        if let (Some(queues), Some(snapshot)) = (slot.queues.as_mut(), recovery.snapshot.as_ref()) {
            queues.restore(snapshot);
        }
        recovery.window.end_request();
        let request = interrupted.and_then(|w| w.request());
        let mut state = self.lock();
        let woken = state.router.recovered(id, request);
        if state.schedule(&woken, self.index) {
            self.notify_others();
        }
        true
    }

    fn restart(&mut self, id: DomainId) -> bool {
        let slot = self.slots.get_mut(&id).expect("own domain");
        let recovery = slot.recovery.as_mut().expect("recoverable");
        let console = (self.spawner.options.console)(&recovery.config.name);
        let Ok(domain) = Domain::create(
            self.spawner.host,
            &recovery.config,
            &recovery.image,
            console,
        ) else {
            return false;
        };
        slot.domain = domain;
        slot.queues = None;
        recovery.window = RecoveryWindow::new();
        recovery.snapshot = None;
        let mut state = self.lock();
        let woken = state.router.restarted(id);
        if state.schedule(&woken, self.index) {
            self.notify_others();
        }
        true
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
