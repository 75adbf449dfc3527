//! Recovery of server domains: checkpoints at request boundaries, the recovery
//! window of the request in hand, and what to do when the domain faults (decided by
//! `ankh_recovery`, carried out here).
//!
//! A [`Recovery`] is a component of one server domain. The worker thread that runs
//! the domain calls it at the domain's message boundaries and faults, handing it the
//! domain and its queues explicitly; whatever recovery needs from the rest of the
//! system (the router, the run's records, booting a domain again) it asks through
//! [`RecoverySite`].

use std::time::{Duration, Instant};

use ankh_domains::Policy;
use ankh_recovery::{
    decide, has_window, Action, Coverage, Escalate, Escalation, EscalationConfig, RecoveryEvent,
    RecoveryWindow, ShutdownReason, WindowState, ONE_WAY,
};
use virtio_seep::message::DomainId;
use virtio_seep::opcode::{self, SeepClass, REPLY};

use super::control::ControlHub;
use super::injection::{Injection, When};
use super::{CheckpointCount, Resumption, SystemStop};
use crate::domain::{Domain, DomainConfig, DomainError, DomainState};
use crate::fault::{DomainExit, DomainFault};
use crate::image::GuestImage;
use crate::ipc::queues::{DomainQueues, QueuesSnapshot};
use crate::ipc::Message;
use crate::tsc;

/// What recovery asks of the system that runs a server domain. The worker thread
/// that owns the domain implements it (it holds the router and the run's records).
pub(super) trait RecoverySite {
    /// Guest run time a server may spend on one message.
    fn request_budget(&self) -> Duration;
    /// Whether a server that faulted after its window closed is restarted anyway.
    fn fallback_restart(&self) -> bool;
    /// The control socket's hub, if any.
    fn hub(&self) -> Option<&ControlHub>;
    /// Strikes `injection` at `id` as soon as `id` is not running.
    fn strike_when_not_running(&mut self, id: DomainId, injection: Injection);
    /// Whether `id` waits in receive with no request in hand (a request boundary).
    fn at_request_boundary(&self, id: DomainId) -> bool;
    /// A request of `id` finished in window state `finished`, after what `ran` counts:
    /// guest run time and instructions in and out of its window (coverage).
    fn request_finished(&mut self, id: DomainId, finished: WindowState, ran: Coverage);
    /// A recovered domain served again.
    fn resumed(&mut self, resumption: Resumption);
    /// `id` was rolled back: `replay` goes back first into its inbox, the request
    /// `abandoned` (if any) is answered `ERESTART`, and whoever that wakes runs.
    fn rolled_back(&mut self, id: DomainId, replay: Option<Message>, abandoned: Option<u64>);
    /// `id` was booted again from its image: whoever that wakes runs.
    fn restarted(&mut self, id: DomainId);
    /// Boots a fresh domain from `image` with `config`.
    fn boot(&self, config: &DomainConfig, image: &GuestImage) -> Result<Domain, DomainError>;
    /// Ends the whole run (a halt or a controlled shutdown).
    fn stop_system(&mut self, stop: SystemStop);
    /// Records a recovery.
    fn recorded(&mut self, event: RecoveryEvent);
}

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
    /// The one-way message requeued after a rollback comes next: `Some(counted)`,
    /// where `counted` says whether it has used up its replay (a replay after a
    /// hot-kill does not).
    replay_next: Option<bool>,
    /// The one-way message in hand (or its first run, before a replay) sent
    /// repeatable updates that kept the window open under enhanced
    /// (`opcode::is_repeatable`): only a complete replay makes them consistent, so it
    /// is never dropped.
    repeated_updates: bool,
    /// The domain answered the request in hand and runs on without having blocked
    /// again: its state after the answer is exposed, and the last checkpoint (at the
    /// start of that request) is no longer a consistent point to go back to.
    answered_and_running: Option<u64>,
    /// Requests delivered so far.
    requests: u64,
    /// Checkpoints taken so far, and the pages they copied; with the trapped writes
    /// of the instances a restart replaced (the live one's are read at the end, off
    /// the request path: see `checkpoint_count`).
    checkpoints: CheckpointCount,
    /// The live instance's trapped writes at its first checkpoint: those of its
    /// boot, which are not the requests' (`None` before that checkpoint).
    trapped_at_boot: Option<u64>,
    /// Planned injections: each strikes once its request (1-based) is delivered.
    kills: Vec<(u64, Injection)>,
    /// An injection waiting for the window of the request in hand to close, or for
    /// a message with the given opcode (`When::AfterSend`).
    armed: Option<(Injection, Option<u16>)>,
    /// A hang or a broken stack the operator injected (`ankh ctl kill`) has not
    /// stopped the domain yet: the fault it leads to (a watchdog timeout, a CPU
    /// exception) is the operator's, and not evidence about recovery, as an injected
    /// crash is not.
    sabotaged: bool,
    /// A hang or a broken stack aimed at the domain while it waited for a message: it
    /// strikes right after the next request is delivered, after that boundary's
    /// checkpoint, as a mid-request one does. Written into the domain at once, it
    /// would strike only then anyway, and the checkpoint at that delivery would keep
    /// it: every rollback would restore it, and the server would fault at every
    /// message until escalation shut the system down.
    deferred_sabotage: Option<Injection>,
    /// When the last fault was detected, until the domain replies again.
    faulted_at: Option<Instant>,
    /// Guest run time since the last finished request, by window state.
    run: RunShare,
}

/// Guest run time with a request in hand, inside and outside the recovery window (and
/// instructions, when the domain is single-stepped). Time is in ticks of the CPU's
/// counter ([`tsc`]), read at every exit; nanoseconds once per request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct RunShare {
    /// Ticks with the window open.
    open_ticks: u64,
    /// Ticks with the window closed.
    closed_ticks: u64,
    /// Instructions single-stepped with the window open.
    open_instructions: u64,
    /// Instructions single-stepped with the window closed.
    closed_instructions: u64,
}

impl RunShare {
    /// What it counts, in nanoseconds, as coverage adds it up (no requests).
    fn coverage(&self) -> Coverage {
        Coverage {
            run_open_ns: tsc::to_ns(self.open_ticks),
            run_closed_ns: tsc::to_ns(self.closed_ticks),
            instructions_open: self.open_instructions,
            instructions_closed: self.closed_instructions,
            ..Coverage::default()
        }
    }
}

/// A one-way message a server has in hand.
struct OneWay {
    message: Message,
    /// It is already the replay (after a fault while handling it): a second fault
    /// drops it.
    replayed: bool,
}

/// What tells a request apart from another for the poison-request evidence: who sent
/// it, what it asks, and its inline payload. Computed for every request a recoverable
/// server takes, so a multiply-rotate over 8-byte words rather than SipHash (no
/// adversary gains anything from a collision: it can only merge two requests' counts).
fn fingerprint(message: &Message) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mix = |hash: u64, word: u64| (hash ^ word).wrapping_mul(K).rotate_left(29);
    let start = (u64::from(message.header.source) << 16) | u64::from(message.header.opcode);
    let mut hash = mix(K, start);
    let mut words = message.payload.chunks_exact(8);
    for word in &mut words {
        hash = mix(hash, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut tail = [0u8; 8];
    tail[..words.remainder().len()].copy_from_slice(words.remainder());
    mix(
        mix(hash, u64::from_le_bytes(tail)),
        message.payload.len() as u64,
    )
}

impl Recovery {
    /// The checkpoints taken so far, with the trapped writes of every instance of
    /// the domain, `domain` being the live one.
    pub(super) fn checkpoint_count(&self, domain: &Domain) -> CheckpointCount {
        let mut count = self.checkpoints;
        count.trapped_writes += self.trapped_since_boot(domain);
        count
    }

    /// The trapped writes of `domain`, the live instance, since its first checkpoint.
    fn trapped_since_boot(&self, domain: &Domain) -> u64 {
        match (self.trapped_at_boot, domain.trapped_writes()) {
            (Some(at_boot), Some(now)) => now.saturating_sub(at_boot),
            _ => 0,
        }
    }

    /// Recovery under `policy` for a domain booted from `image` with `config`.
    pub(super) fn new(policy: Policy, image: GuestImage, config: DomainConfig) -> Recovery {
        // Measured now, at boot, not at the first request's end.
        let _ = tsc::ns_per_tick();
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
            replay_next: None,
            repeated_updates: false,
            answered_and_running: None,
            requests: 0,
            checkpoints: CheckpointCount::default(),
            trapped_at_boot: None,
            kills: Vec::new(),
            armed: None,
            sabotaged: false,
            deferred_sabotage: None,
            faulted_at: None,
            run: RunShare::default(),
        }
    }

    /// Crashes the domain right after its `n`-th request is delivered, for each `n`
    /// (hot-kill mid-request).
    pub(super) fn kill_at(mut self, kills: impl IntoIterator<Item = (u64, Injection)>) -> Recovery {
        self.kills.extend(kills);
        self
    }

    /// The domain ran for `ticks` of the CPU's counter ([`tsc::now`]; one run slice,
    /// which an exit ends: the window state cannot change inside it). Counted while a
    /// request is in hand. `instructions`: how many of them were single-stepped in it
    /// (a profile run).
    pub(super) fn account_run(&mut self, ticks: u64, instructions: u64) {
        let run = &mut self.run;
        match self.window.state() {
            WindowState::Open { .. } => {
                run.open_ticks += ticks;
                run.open_instructions += instructions;
            }
            WindowState::Closed { .. } => {
                run.closed_ticks += ticks;
                run.closed_instructions += instructions;
            }
            WindowState::Idle => {}
        }
    }

    /// Whether [`account_run`](Self::account_run) would count a run now: only with a
    /// request in hand (the window open or closed). The caller skips its two counter
    /// reads otherwise.
    pub(super) fn counts_run(&self) -> bool {
        !matches!(self.window.state(), WindowState::Idle)
    }

    /// Whether the domain has no request in hand (it is at a request boundary).
    pub(super) fn idle(&self) -> bool {
        self.window.request().is_none()
    }

    /// Whether `request` is the request in hand (a reply to it ends it).
    pub(super) fn answers(&self, request: u64) -> bool {
        self.window.state().answerable() == Some(request)
    }

    /// Whether the domain has a request in hand (not a one-way message).
    pub(super) fn serving_a_request(&self) -> bool {
        self.window.state().answerable().is_some()
    }

    /// Whether the domain takes checkpoints (the policy has a recovery window).
    pub(super) fn checkpoints(&self) -> bool {
        has_window(self.policy)
    }
}

impl Recovery {
    /// Before `message` is written into the queues of domain `id`: at a message
    /// boundary (a request or a one-way message, not a reply to a call of its own),
    /// the domain takes its checkpoint and opens the window. Returns the fault to
    /// inject right after this delivery (hot-kill mid-request), if one is planned;
    /// injections planned for later are armed or handed to `site`.
    pub(super) fn before_delivery(
        &mut self,
        id: DomainId,
        domain: &mut Domain,
        queues: Option<&DomainQueues>,
        message: &Message,
        site: &mut impl RecoverySite,
    ) -> Option<Injection> {
        if message.header.opcode == REPLY {
            return None;
        }
        let queues = queues?;
        let is_request = message.header.request_id != 0;
        // Every message a server handles gets a fresh run-time budget.
        domain.set_request_budget(Some(site.request_budget()));
        let mut kill = None;
        if is_request {
            self.requests += 1;
            let mut strikes: Vec<Injection> = self
                .kills
                .iter()
                .filter(|(at, _)| *at == self.requests)
                .map(|(_, injection)| *injection)
                .collect();
            let later = [When::MidRequest, When::WindowClosed];
            strikes.extend(
                site.hub()
                    .and_then(|hub| hub.take_kill(domain.name(), &later)),
            );
            for injection in strikes {
                match injection.when {
                    When::MidRequest => kill = Some(injection),
                    When::WindowClosed => self.armed = Some((injection, None)),
                    When::AfterSend(code) => self.armed = Some((injection, Some(code))),
                    When::Now | When::Idle => site.strike_when_not_running(id, injection),
                }
            }
            // Like a mid-request one, at a request: never while the server handles a
            // one-way message (a hang struck at the delivery of one, then its replay
            // after the rollback, was seen to make PM's runtime panic in a kill storm).
            kill = kill.or(self.deferred_sabotage.take());
        }
        self.answered_and_running = None;
        let mut pages = None;
        if self.checkpoints() {
            // Whatever was in hand (a parked request, a one-way message) ends here.
            let finished = self.window.end_request();
            match domain.checkpoint() {
                Ok(copied) => {
                    self.snapshot = Some(queues.snapshot());
                    self.poisoned = false;
                    pages = Some(copied as u64);
                    self.checkpoints += CheckpointCount {
                        checkpoints: 1,
                        pages: copied as u64,
                        trapped_writes: 0,
                    };
                    if self.trapped_at_boot.is_none() {
                        self.trapped_at_boot = Some(domain.trapped_writes().unwrap_or(0));
                    }
                }
                Err(error) => {
                    self.snapshot = None;
                    self.poisoned = true;
                    tracing::warn!(
                        "warning: checkpoint of {} failed ({error}): it cannot be rolled \
                         back until a checkpoint succeeds",
                        domain.name()
                    );
                }
            }
            let request = if is_request {
                message.header.request_id
            } else {
                ONE_WAY
            };
            self.window.on_request_delivered(request);
            self.in_hand = is_request.then(|| fingerprint(message));
            let replay = self.replay_next.take();
            // A replay inherits what its first run sent.
            self.repeated_updates &= replay.is_some() && !is_request;
            let replayed = replay.unwrap_or(false);
            self.one_way = (!is_request).then(|| OneWay {
                message: message.clone(),
                replayed,
            });
            let run = std::mem::take(&mut self.run);
            record_finished(id, domain.name(), finished, run, site);
        }
        if let (Some(hub), true) = (site.hub(), is_request) {
            hub.update(domain.name(), |stats| {
                stats.requests += 1;
                if let Some(pages) = pages {
                    stats.checkpoints += 1;
                    stats.checkpoint_pages += pages;
                }
            });
        }
        kill
    }

    /// `message` leaves domain `id` (called `name`): it may close the window. `held`:
    /// the VMM holds its effect until the domain's state is exposed, or verified that
    /// a rollback undoes it (module docs of `held`): it then counts as a Query, which
    /// exposes nothing the domain's rollback would not undo. Returns the fault to
    /// inject once the message is on its way, when one was waiting for the window to
    /// close or for this message.
    pub(super) fn on_outgoing(
        &mut self,
        id: DomainId,
        name: &str,
        message: &Message,
        held: bool,
        site: &mut impl RecoverySite,
    ) -> Option<Injection> {
        let policy = self.policy;
        let in_hand = self.window.request().is_some();
        if message.header.opcode == REPLY {
            if let Some(at) = self.faulted_at.take() {
                site.resumed(Resumption {
                    domain: name.to_owned(),
                    after: at.elapsed(),
                });
            }
        }
        let class = if message.header.opcode == REPLY {
            if self.window.state().answerable() == Some(message.header.request_id) {
                let finished = self.window.on_reply_sent();
                self.escalation.record_progress();
                self.answered_and_running = Some(message.header.request_id);
                record_finished(id, name, finished, std::mem::take(&mut self.run), site);
                return None;
            }
            // A held reply to another request exposes nothing yet (`system::held`).
            match held {
                true => {
                    self.window.on_outgoing(SeepClass::Query, policy);
                    SeepClass::Query
                }
                false => {
                    self.window.on_reply_to_other(policy);
                    SeepClass::External
                }
            }
        } else {
            // A repeatable update from a one-way message is sent again by its replay,
            // to the same effect: under enhanced it leaves the window open.
            let repeatable = policy == Policy::Enhanced
                && self.window.request() == Some(ONE_WAY)
                && opcode::is_repeatable(message.header.opcode);
            self.repeated_updates |= repeatable && self.window.is_open();
            let class = match held || repeatable {
                true => SeepClass::Query,
                false => opcode::lookup(message.header.opcode)?.class,
            };
            self.window.on_outgoing(class, policy);
            class
        };
        // An armed injection waits, across requests, for the first message that
        // exposes state mid-request: the one that closes the window under the enhanced
        // policy (under pessimistic the window may have closed earlier; under naive it
        // never closes); or for the first message with its opcode.
        let strikes = match self.armed {
            Some((_, Some(code))) => code == message.header.opcode,
            Some((_, None)) => matches!(class, SeepClass::Update | SeepClass::External),
            None => false,
        };
        (in_hand && strikes)
            .then(|| self.armed.take().map(|(injection, _)| injection))
            .flatten()
    }

    /// Whether the window of the request in hand is open (a rollback would undo
    /// everything the request did).
    pub(super) fn window_open(&self) -> bool {
        self.window.is_open()
    }

    /// A hang or a broken stack for the domain, which waits for a message: it strikes
    /// once the next message is delivered (see `deferred_sabotage`).
    pub(super) fn defer_sabotage(&mut self, injection: Injection) {
        self.deferred_sabotage = Some(injection);
    }

    /// A hang or a broken stack the operator asked for was just injected: the
    /// domain's next fault is its consequence.
    pub(super) fn sabotaged(&mut self) {
        self.sabotaged = true;
    }

    /// Takes a checkpoint of the idle `domain` where it stands (before a fault is
    /// injected into it, so that recovering it loses nothing).
    pub(super) fn checkpoint_idle(&mut self, domain: &mut Domain, queues: Option<&DomainQueues>) {
        let Some(queues) = queues else {
            return;
        };
        if self.checkpoints() && self.idle() {
            match domain.checkpoint() {
                Ok(_) => {
                    self.snapshot = Some(queues.snapshot());
                    self.poisoned = false;
                    self.answered_and_running = None;
                }
                Err(_) => {
                    self.snapshot = None;
                    self.poisoned = true;
                }
            }
        }
    }

    /// Domain `id` stopped. If it faulted, it is rolled back, restarted, or stops the
    /// system, as its policy and the evidence say; returns true when it was recovered
    /// (it must not be treated as stopped). The event records what was done, which
    /// may differ from what was decided (a rollback that was refused, a restart that
    /// failed).
    pub(super) fn try_recover(
        &mut self,
        id: DomainId,
        domain: &mut Domain,
        queues: &mut Option<DomainQueues>,
        site: &mut impl RecoverySite,
    ) -> bool {
        let start = Instant::now();
        let at_boundary = site.at_request_boundary(id);
        let fallback = site.fallback_restart();
        let fault = match domain.state() {
            DomainState::Stopped(DomainExit::Faulted(fault)) => fault.clone(),
            _ => return false,
        };
        if matches!(fault, DomainFault::Killed { .. }) {
            return false;
        }
        let mut window = self.window.state();
        if let (WindowState::Idle, Some(request), false) =
            (window, self.answered_and_running, at_boundary)
        {
            // It answered its request and ran on: that answer exposed its state.
            window = WindowState::Closed {
                request,
                by: SeepClass::Reply,
            };
        }
        self.faulted_at = Some(start);
        // Evidence about recovery: faults while serving a message, other than the
        // operator's crash, hang or broken stack (module docs of
        // `ankh_recovery::escalation`).
        let injected =
            matches!(fault, DomainFault::Injected(_)) | std::mem::take(&mut self.sabotaged);
        let evidence = window.request().is_some() && !injected;
        let escalate = match evidence {
            true => self.escalation.record_fault(self.in_hand),
            false => Escalate::None,
        };
        let may_lose_state = self.policy == Policy::Stateless || fallback;
        let mut decided = escalate.apply(decide(self.policy, window, fallback), may_lose_state);
        let mut note = None;
        if window.request() == Some(ONE_WAY) && matches!(decided, Action::Rollback { .. }) {
            // Nobody waits for an answer to a one-way message.
            decided = Action::Rollback { error_reply: false };
            let replayed = self.one_way.as_ref().is_some_and(|m| m.replayed);
            if replayed && self.repeated_updates && !injected {
                decided = Action::Shutdown {
                    reason: ShutdownReason::ReplayFailed,
                };
            }
        }
        if matches!(decided, Action::Rollback { .. }) && self.snapshot.is_none() {
            decided = match (self.poisoned, may_lose_state) {
                // Faulted before its first checkpoint: it has no state to lose.
                (false, _) | (true, true) => Action::Restart,
                (true, false) => Action::Shutdown {
                    reason: ShutdownReason::CheckpointFailed,
                },
            };
            if self.poisoned {
                note = Some("its last checkpoint failed".to_owned());
            }
        }
        let faulted = Faulted {
            id,
            window,
            fault: &fault,
            may_lose_state,
            injected,
        };
        let (action, outcome_note) = self.carry_out(decided, &faulted, domain, queues, site);
        let note = match (note, outcome_note) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        let event = RecoveryEvent {
            domain_id: id,
            domain_name: domain.name().to_owned(),
            request_id: window.answerable(),
            fault: fault.kind().to_owned(),
            detail: fault.detail(),
            action,
            decided,
            note,
            latency: start.elapsed(),
            window,
        };
        tracing::info!("{event}");
        if let Some(hub) = site.hub() {
            hub.update(&event.domain_name, |stats| {
                *stats
                    .recoveries
                    .entry(event.action.to_string())
                    .or_default() += 1;
            });
        }
        let recovered = matches!(action, Action::Rollback { .. } | Action::Restart);
        site.recorded(event);
        recovered
    }

    /// Carries out `decided` for the faulted domain; returns what was done and a note
    /// when it differs from the decision or concerns the one-way message in hand.
    fn carry_out(
        &mut self,
        decided: Action,
        faulted: &Faulted<'_>,
        domain: &mut Domain,
        queues: &mut Option<DomainQueues>,
        site: &mut impl RecoverySite,
    ) -> (Action, Option<String>) {
        let id = faulted.id;
        match decided {
            Action::Rollback { .. } => match self.roll_back(faulted, domain, queues, site) {
                Ok(note) => (decided, note),
                Err(why) if faulted.may_lose_state => {
                    match self.restart(id, domain, queues, site) {
                        Ok(()) => (Action::Restart, Some(format!("rollback failed: {why}"))),
                        Err(error) => give_up(id, format!("rollback failed: {why}; {error}"), site),
                    }
                }
                Err(why) => {
                    let reason = ShutdownReason::RollbackRefused;
                    site.stop_system(SystemStop::Shutdown {
                        domain: id,
                        reason: reason.to_string(),
                    });
                    (
                        Action::Shutdown { reason },
                        Some(format!("rollback failed: {why}")),
                    )
                }
            },
            Action::Restart => match self.restart(id, domain, queues, site) {
                Ok(()) => (Action::Restart, None),
                Err(error) => give_up(id, error, site),
            },
            Action::Halt => {
                site.stop_system(SystemStop::Halted {
                    domain: id,
                    fault: faulted.fault.to_string(),
                });
                (Action::Halt, None)
            }
            Action::Shutdown { reason } => {
                site.stop_system(SystemStop::Shutdown {
                    domain: id,
                    reason: reason.to_string(),
                });
                (decided, None)
            }
        }
    }

    /// Rolls the domain back to its last checkpoint. The request in hand (per
    /// `window`) is answered `ERESTART`; a one-way message in hand is replayed once,
    /// and dropped if it faults the domain again (a hot-kill does not use up its
    /// replay: it says nothing about the message). Returns a note on the one-way
    /// message, or why the rollback could not be done (the domain is then untouched).
    fn roll_back(
        &mut self,
        faulted: &Faulted<'_>,
        domain: &mut Domain,
        queues: &mut Option<DomainQueues>,
        site: &mut impl RecoverySite,
    ) -> Result<Option<String>, String> {
        let snapshot = self.snapshot.as_ref().ok_or("no checkpoint")?;
        domain.rollback().map_err(|e| e.to_string())?;
        if let Some(queues) = queues.as_mut() {
            queues.restore(snapshot);
        }
        self.window.end_request();
        self.answered_and_running = None;
        let mut note = None;
        let (id, window) = (faulted.id, faulted.window);
        let replay = match (window.request(), self.one_way.take()) {
            (Some(ONE_WAY), Some(one_way)) if faulted.injected => {
                self.replay_next = Some(one_way.replayed);
                note = Some("the one-way message in hand is replayed (a hot-kill)".to_owned());
                Some(one_way.message)
            }
            (Some(ONE_WAY), Some(one_way)) if !one_way.replayed => {
                self.replay_next = Some(true);
                note = Some("the one-way message in hand is replayed once".to_owned());
                Some(one_way.message)
            }
            (Some(ONE_WAY), Some(_)) => {
                note = Some("the one-way message in hand faulted it twice: dropped".to_owned());
                None
            }
            _ => None,
        };
        site.rolled_back(id, replay, window.answerable());
        Ok(note)
    }

    /// Boots the domain again from its image, with fresh queues and window.
    fn restart(
        &mut self,
        id: DomainId,
        domain: &mut Domain,
        queues: &mut Option<DomainQueues>,
        site: &mut impl RecoverySite,
    ) -> Result<(), String> {
        let trapped = self.trapped_since_boot(domain);
        *domain = site
            .boot(&self.config, &self.image)
            .map_err(|error| format!("restart failed: {error}"))?;
        self.checkpoints.trapped_writes += trapped;
        self.trapped_at_boot = None;
        *queues = None;
        self.window = RecoveryWindow::new();
        self.snapshot = None;
        self.poisoned = false;
        self.one_way = None;
        self.replay_next = None;
        self.repeated_updates = false;
        self.answered_and_running = None;
        site.restarted(id);
        Ok(())
    }
}

/// A fault being recovered: which domain, in which window state, and what the
/// policy allows.
struct Faulted<'a> {
    id: DomainId,
    window: WindowState,
    fault: &'a DomainFault,
    may_lose_state: bool,
    /// The operator injected it (a hot-kill): not the message's doing.
    injected: bool,
}

/// A restart failed: the server is gone and the system cannot stay consistent.
fn give_up(id: DomainId, why: String, site: &mut impl RecoverySite) -> (Action, Option<String>) {
    let reason = ShutdownReason::RestartFailed;
    site.stop_system(SystemStop::Shutdown {
        domain: id,
        reason: format!("{reason}: {why}"),
    });
    (Action::Shutdown { reason }, Some(why))
}

/// A request of `id` (called `name`) finished in window state `finished`: coverage
/// and status.
fn record_finished(
    id: DomainId,
    name: &str,
    finished: WindowState,
    run: RunShare,
    site: &mut impl RecoverySite,
) {
    if finished.answerable().is_none() {
        return;
    }
    let ran = run.coverage();
    site.request_finished(id, finished, ran);
    if let Some(hub) = site.hub() {
        hub.update(name, |stats| {
            stats.finished += 1;
            stats.finished_in_window += u64::from(finished.is_open());
            stats.run_in_window_ns += ran.run_open_ns;
            stats.run_ns += ran.run_open_ns + ran.run_closed_ns;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(source: DomainId, opcode: u16, payload: &[u8]) -> Message {
        let mut message = Message {
            payload: payload.to_vec(),
            ..Message::default()
        };
        message.header.source = source;
        message.header.opcode = opcode;
        message
    }

    #[test]
    fn a_fingerprint_tells_caller_opcode_and_payload_apart() {
        let base = fingerprint(&request(5, 0x200, b"/etc/motd\0"));
        assert_eq!(base, fingerprint(&request(5, 0x200, b"/etc/motd\0")));
        for other in [
            request(6, 0x200, b"/etc/motd\0"),
            request(5, 0x201, b"/etc/motd\0"),
            request(5, 0x200, b"/etc/motd\0\0"),
            request(5, 0x200, b"/etc/mote\0"),
            request(5, 0x200, b""),
        ] {
            assert_ne!(base, fingerprint(&other), "{other:?}");
        }
    }
}
