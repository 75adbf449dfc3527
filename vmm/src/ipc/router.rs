//! The router: the bookkeeping of every message between domains.
//!
//! It knows, for each domain, whether it runs, waits (for any message, a message from
//! one domain, or the reply to one request) or has stopped; its inbox of messages not
//! yet delivered; the requests it received and has not answered. It assigns request
//! ids, checks every message against the call graph and the storm limits, delivers a
//! reply only to the domain waiting for that very request, and refuses a wait that
//! would close a cycle of waiting domains (`EDEADLK`) instead of hanging.
//!
//! It touches no guest memory and no KVM: the scheduler feeds it the messages a domain
//! sent (already validated and copied by [`super::queues`]) and the domain's next wait,
//! and it answers what to deliver and whom to wake. Transitions of a domain:
//!
//! ```text
//! Running --wait(Flush)--------------------------------------> Running
//! Running --wait(Receive/AwaitReply), message in inbox-------> Running + deliver
//! Running --wait(...), nothing yet---------------------------> Waiting
//! Waiting --a matching message arrives (submit/stopped)------> Ready(message)
//! Ready   --take_delivery (the scheduler resumes it)---------> Running + deliver
//! any     --stopped----------------------------------------> Stopped (terminal)
//! ```

use std::collections::VecDeque;
use std::time::Instant;

// The router's maps are looked up several times per message, with keys the VMM
// chose (domain ids, request ids): Fx hashing, not SipHash.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use virtio_seep::errno::{self, Errno};
use virtio_seep::message::{DomainId, MessageHeader, VMM_DOMAIN};
use virtio_seep::opcode::{self, REPLY};
use virtio_seep::queue::IpcOp;

pub use ankh_domains::Role;

use super::fault::{OperationFault, StormLimit};
use super::{IpcFault, Message};

/// What a waiting domain waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Any message, or one from this domain only.
    Receive {
        /// The only source accepted, if any.
        from: Option<DomainId>,
    },
    /// The reply to this request, sent to `callee`.
    Reply {
        /// The request id.
        request: u64,
        /// The domain that must answer it.
        callee: DomainId,
    },
}

/// Where a domain is (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Activity {
    /// Running, or ready to run with nothing to deliver.
    Running,
    /// Blocked.
    Waiting(Wait),
    /// Woken: run it, after delivering this message.
    Ready(Box<Message>),
    /// Gone for good.
    Stopped,
}

/// What the domain does after its `Ipc` hypercall.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Resume it.
    Continue,
    /// Write this message into its RX queue, then resume it.
    Deliver(Box<Message>),
    /// It waits; run something else.
    Blocked,
}

/// Limits against message storms, and the bounds on what the router holds for each
/// domain (docs/ipc.md, "Bounds"). Each bound is charged to the domain that causes the
/// messages: a caller owns the replies it has not taken, a sender its one-way messages,
/// and a full inbox refuses new requests (`EAGAIN`) instead of faulting their sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StormLimits {
    /// Messages a domain may send per second, sustained.
    pub per_second: u32,
    /// Messages a domain may send in a burst.
    pub burst: u32,
    /// Messages that may wait in one domain's inbox before new requests are refused
    /// with `EAGAIN` (each sender may still have [`StormLimits::inbox_share`] there).
    pub inbox: usize,
    /// Messages one sender may always have waiting in one inbox, even a full one, so
    /// that a flood by one client never locks the others out.
    pub inbox_share: u32,
    /// Requests a domain may have in flight: sent, and their reply not yet taken. The
    /// replies the router holds for a domain are bounded by construction.
    pub outstanding: u32,
    /// One-way messages a domain may have waiting, undelivered, in other inboxes.
    pub one_way: u32,
    /// Bytes (payload and bulk) that may wait in one domain's inbox: a request beyond
    /// them is refused with `EAGAIN`, a reply loses its data and carries `ENOBUFS`.
    pub inbox_bytes: usize,
    /// Bytes that may wait in all inboxes together (the same refusals beyond it).
    pub total_bytes: usize,
}

impl Default for StormLimits {
    fn default() -> Self {
        StormLimits {
            per_second: 100_000,
            burst: 1_000,
            inbox: 1_024,
            inbox_share: 8,
            outstanding: 64,
            one_way: 64,
            inbox_bytes: 16 << 20,
            total_bytes: 256 << 20,
        }
    }
}

/// A token bucket: `burst` messages at once, refilled at `per_second`.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    fn take(&mut self, limits: &StormLimits, now: Instant) -> bool {
        let refill = now.duration_since(self.last).as_secs_f64() * f64::from(limits.per_second);
        self.tokens = (self.tokens + refill).min(f64::from(limits.burst));
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Slot {
    role: Role,
    activity: Activity,
    inbox: VecDeque<Message>,
    /// Bytes of the messages in `inbox`.
    inbox_bytes: usize,
    /// Per sender, the messages other than replies it has in `inbox`.
    inbox_from: HashMap<DomainId, u32>,
    /// Requests delivered to this domain and not answered yet.
    received: HashSet<u64>,
    /// Requests this domain sent whose reply it has not taken yet (the reply is owed,
    /// or waits in `inbox`).
    outstanding: u32,
    /// One-way messages this domain sent that wait, undelivered, in an inbox.
    one_way: u32,
    bucket: TokenBucket,
}

#[derive(Debug)]
struct Request {
    caller: DomainId,
    callee: DomainId,
    /// The caller no longer wants the reply (it stopped, or its wait was refused).
    abandoned: bool,
}

/// The router of one system.
#[derive(Debug)]
pub struct Router {
    slots: Vec<Slot>,
    allowed: HashSet<(DomainId, DomainId)>,
    requests: HashMap<u64, Request>,
    next_request: u64,
    limits: StormLimits,
    /// Bytes waiting in every inbox together.
    held_bytes: usize,
    /// Opcodes only the process manager may send (see [`Router::manager_only`]).
    manager_only: HashSet<u16>,
}

impl Router {
    /// A router for domains `1..=domains`, where `from` may send requests and one-way
    /// messages to `to` exactly for the pairs in `call_graph`.
    pub fn new(
        domains: usize,
        call_graph: impl IntoIterator<Item = (DomainId, DomainId)>,
        limits: StormLimits,
    ) -> Router {
        Router::with_roles(vec![Role::Server; domains], call_graph, limits)
    }

    /// A router whose domain `i + 1` has role `roles[i]`.
    pub fn with_roles(
        roles: Vec<Role>,
        call_graph: impl IntoIterator<Item = (DomainId, DomainId)>,
        limits: StormLimits,
    ) -> Router {
        let mut router = Router {
            slots: Vec::new(),
            allowed: call_graph.into_iter().collect(),
            requests: HashMap::default(),
            next_request: 1,
            limits,
            held_bytes: 0,
            manager_only: HashSet::default(),
        };
        for role in roles {
            router.push_slot(role);
        }
        router
    }

    /// Only the process manager may send messages with these opcodes: from anyone
    /// else they are answered `EPERM` and never delivered. (The system layer gives the
    /// list: the router does not know what the opcodes mean.)
    pub fn manager_only(mut self, opcodes: impl IntoIterator<Item = u16>) -> Router {
        self.manager_only.extend(opcodes);
        self
    }

    fn push_slot(&mut self, role: Role) -> DomainId {
        self.slots.push(Slot {
            role,
            activity: Activity::Running,
            inbox: VecDeque::new(),
            inbox_bytes: 0,
            inbox_from: HashMap::default(),
            received: HashSet::default(),
            outstanding: 0,
            one_way: 0,
            bucket: TokenBucket {
                tokens: f64::from(self.limits.burst),
                last: Instant::now(),
            },
        });
        self.domain_count()
    }

    /// Adds a domain (created at run time) that may call `callees`; returns its id.
    pub fn add_domain(&mut self, role: Role, callees: &[DomainId]) -> DomainId {
        let id = self.push_slot(role);
        self.allowed.extend(callees.iter().map(|to| (id, *to)));
        id
    }

    /// The domains `id` may call, in id order.
    pub fn callees(&self, id: DomainId) -> Vec<DomainId> {
        let mut callees: Vec<DomainId> = self
            .allowed
            .iter()
            .filter(|(from, _)| *from == id)
            .map(|(_, to)| *to)
            .collect();
        callees.sort_unstable();
        callees
    }

    /// The role of domain `id`.
    pub fn role(&self, id: DomainId) -> Role {
        self.slot(id).role
    }

    /// The process manager, if the system has one that still runs.
    pub fn process_manager(&self) -> Option<DomainId> {
        (1..=self.domain_count()).find(|id| {
            self.slot(*id).role == Role::ProcessManager
                && self.slot(*id).activity != Activity::Stopped
        })
    }

    /// Registers a kernel call (a request to the VMM, domain 0) from `from` after
    /// checking that its role allows it; returns the request id to answer it by.
    pub fn kernel_request(
        &mut self,
        from: DomainId,
        opcode: u16,
        now: Instant,
    ) -> Result<u64, IpcFault> {
        let allowed = match opcode {
            opcode::SYS_ROOT_FS => self.role(from) != Role::Process,
            opcode::SYS_CREATE_DOMAIN | opcode::SYS_KILL_DOMAIN | opcode::SYS_START_DOMAIN => {
                self.role(from) == Role::ProcessManager
            }
            _ => false,
        };
        if !allowed {
            return Err(IpcFault::ForbiddenDestination(VMM_DOMAIN));
        }
        let limits = self.limits;
        if !self.slot_mut(from).bucket.take(&limits, now) {
            return Err(IpcFault::MessageStorm(StormLimit::KernelCallRate));
        }
        self.check_outstanding(from)?;
        Ok(self.open_request(from, VMM_DOMAIN))
    }

    /// Refuses a new request from `from` when it already has as many in flight as
    /// [`StormLimits::outstanding`] allows: it is not taking its replies.
    fn check_outstanding(&self, from: DomainId) -> Result<(), IpcFault> {
        let limit = self.limits.outstanding;
        if self.slot(from).outstanding >= limit {
            return Err(IpcFault::MessageStorm(StormLimit::Outstanding { limit }));
        }
        Ok(())
    }

    /// Registers a new request from `caller` to `callee`; returns its id.
    fn open_request(&mut self, caller: DomainId, callee: DomainId) -> u64 {
        let id = self.next_request;
        self.next_request += 1;
        self.requests.insert(
            id,
            Request {
                caller,
                callee,
                abandoned: false,
            },
        );
        self.slot_mut(caller).outstanding += 1;
        id
    }

    /// Answers kernel call `request`; returns the domains woken.
    pub fn kernel_reply(&mut self, request: u64, mut reply: Message) -> Vec<DomainId> {
        let mut woken = Vec::new();
        let Some(entry) = self.requests.remove(&request) else {
            return woken;
        };
        reply.header.source = VMM_DOMAIN;
        reply.header.opcode = REPLY;
        reply.header.request_id = request;
        reply.header.flags = 0;
        self.settle(entry, reply, &mut woken);
        woken
    }

    /// Where domain `id` is.
    pub fn activity(&self, id: DomainId) -> &Activity {
        &self.slot(id).activity
    }

    /// Whether domain `callee` received request `request` and has not answered it.
    pub fn owes(&self, callee: DomainId, request: u64) -> bool {
        self.slot(callee).received.contains(&request)
    }

    /// Routes the messages domain `from` sent, in order. Returns the domains woken (to
    /// be scheduled) and the id of the last request sent, for an `AwaitReply`.
    pub fn submit(
        &mut self,
        from: DomainId,
        messages: impl IntoIterator<Item = Message>,
        now: Instant,
    ) -> Result<(Vec<DomainId>, Option<u64>), IpcFault> {
        let mut woken = Vec::new();
        let mut last_request = None;
        for mut message in messages {
            message.header.source = from;
            message.header.flags = 0;
            if message.header.opcode == REPLY {
                self.route_reply(from, message, &mut woken)?;
                continue;
            }
            let to = message.header.destination;
            let refused = self.manager_only.contains(&message.header.opcode)
                && self.role(from) != Role::ProcessManager;
            if !self.allowed.contains(&(from, to)) {
                return Err(IpcFault::ForbiddenDestination(to));
            }
            let limits = self.limits;
            if !self.slot_mut(from).bucket.take(&limits, now) {
                return Err(IpcFault::MessageStorm(StormLimit::Rate {
                    burst: limits.burst,
                    per_second: limits.per_second,
                }));
            }
            let info = opcode::lookup(message.header.opcode)
                .ok_or(IpcFault::UnknownOpcode(message.header.opcode))?;
            if info.expects_reply {
                self.check_outstanding(from)?;
            } else if self.slot(from).one_way >= limits.one_way {
                return Err(IpcFault::MessageStorm(StormLimit::OneWay {
                    limit: limits.one_way,
                }));
            }
            message.header.status = errno::OK;
            message.header.request_id = 0;
            if info.expects_reply {
                let id = self.open_request(from, to);
                message.header.request_id = id;
                last_request = Some(id);
            }
            let failure = if refused {
                Some(errno::EPERM)
            } else if self.slot(to).activity == Activity::Stopped {
                Some(errno::EDEADSRCDST)
            } else if self.inbox_full(to, from, inbox::size_of_message(&message)) {
                Some(errno::EAGAIN)
            } else {
                None
            };
            match (failure, info.expects_reply) {
                (None, _) => self.enqueue(to, message, &mut woken),
                (Some(errno), true) => {
                    let id = message.header.request_id;
                    self.fail_request(id, to, errno, &mut woken);
                }
                (Some(errno::EAGAIN), false) => {
                    return Err(IpcFault::MessageStorm(StormLimit::InboxFull { to }))
                }
                // A one-way message to a stopped domain, or one it may not send: dropped.
                (Some(_), false) => {}
            }
        }
        Ok((woken, last_request))
    }

    fn route_reply(
        &mut self,
        from: DomainId,
        reply: Message,
        woken: &mut Vec<DomainId>,
    ) -> Result<(), IpcFault> {
        let id = reply.header.request_id;
        if !self.slot_mut(from).received.remove(&id) {
            return Err(IpcFault::ReplyWithoutCaller(id));
        }
        let request = self
            .requests
            .remove(&id)
            .expect("received requests are tracked");
        self.settle(request, reply, woken);
        Ok(())
    }

    /// Applies domain `id`'s wait after its `Ipc` hypercall. `last_request` is what
    /// [`submit`](Self::submit) returned for the same hypercall.
    pub fn wait(
        &mut self,
        id: DomainId,
        op: IpcOp,
        source: DomainId,
        last_request: Option<u64>,
    ) -> Result<WaitOutcome, IpcFault> {
        let wait = match op {
            IpcOp::Flush => return Ok(WaitOutcome::Continue),
            IpcOp::Receive if source == VMM_DOMAIN => Wait::Receive { from: None },
            IpcOp::Receive => {
                if self.slots.get(index(source)).is_none() || source == id {
                    return Err(IpcFault::BadOperation(OperationFault::ReceiveFrom(source)));
                }
                Wait::Receive { from: Some(source) }
            }
            IpcOp::AwaitReply => {
                let request = last_request
                    .ok_or(IpcFault::BadOperation(OperationFault::AwaitWithoutRequest))?;
                // Absent only when the request already failed (its reply is queued).
                let callee = self.requests.get(&request).map_or(VMM_DOMAIN, |r| r.callee);
                Wait::Reply { request, callee }
            }
        };
        if let Some(message) = self.take_matching(id, wait) {
            return Ok(WaitOutcome::Deliver(Box::new(message)));
        }
        let target = match wait {
            Wait::Receive { from } => from,
            Wait::Reply {
                callee: VMM_DOMAIN, ..
            } => return Err(IpcFault::BadOperation(OperationFault::AwaitAnswered)),
            Wait::Reply { callee, .. } => Some(callee),
        };
        if let Some(target) = target {
            let refusal = if self.slot(target).activity == Activity::Stopped {
                Some(errno::EDEADSRCDST)
            } else if self.waits_on(target, id) {
                Some(errno::EDEADLK)
            } else {
                None
            };
            if let Some(errno) = refusal {
                return Ok(WaitOutcome::Deliver(Box::new(self.refuse(id, wait, errno))));
            }
        }
        self.slot_mut(id).activity = Activity::Waiting(wait);
        Ok(WaitOutcome::Blocked)
    }

    /// The message a woken domain must get before it runs (and marks it running).
    pub fn take_delivery(&mut self, id: DomainId) -> Option<Box<Message>> {
        let slot = self.slot_mut(id);
        match std::mem::replace(&mut slot.activity, Activity::Running) {
            Activity::Ready(message) => Some(message),
            Activity::Stopped => {
                slot.activity = Activity::Stopped;
                None
            }
            _ => None,
        }
    }

    /// Domain `id` stopped: every request it was to answer fails with `EDEADSRCDST`,
    /// and so does every wait for a message from it. Returns the domains woken, or
    /// `None` if it had stopped already. (Telling anyone else how it ended is the
    /// caller's business: see [`Router::post`].)
    pub fn stopped(&mut self, id: DomainId) -> Option<Vec<DomainId>> {
        let mut woken = Vec::new();
        if self.slot(id).activity == Activity::Stopped {
            return None;
        }
        self.slot_mut(id).activity = Activity::Stopped;
        // Messages to it go; so do requests and one-way messages from it that nobody
        // has taken yet (replies it sent stay: they answer live callers).
        // (Its requests in hand and in its inbox are failed below, as owed.)
        self.drain_inbox(id, |_| true, false);
        for other in 1..=self.domain_count() {
            if other != id {
                let from_it = |m: &Message| m.header.source == id && m.header.opcode != REPLY;
                self.drain_inbox(other, from_it, true);
            }
        }
        self.slot_mut(id).received.clear();
        let mut owed: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.callee == id)
            .map(|(request, _)| *request)
            .collect();
        owed.sort_unstable();
        for request in owed {
            self.fail_request(request, id, errno::EDEADSRCDST, &mut woken);
        }
        for request in self.requests.values_mut().filter(|r| r.caller == id) {
            request.abandoned = true;
        }
        let waiting: Vec<DomainId> = (1..=self.domain_count())
            .filter(|d| {
                self.slot(*d).activity == Activity::Waiting(Wait::Receive { from: Some(id) })
            })
            .collect();
        for d in waiting {
            let message = self.refuse(d, Wait::Receive { from: Some(id) }, errno::EDEADSRCDST);
            self.slot_mut(d).activity = Activity::Ready(Box::new(message));
            woken.push(d);
        }
        Some(woken)
    }

    /// Posts `notice`, a one-way message from the VMM (domain 0), into `to`'s inbox;
    /// returns the domains woken (`to`, if it waited for it).
    pub fn post(&mut self, to: DomainId, mut notice: Message) -> Vec<DomainId> {
        notice.header.source = VMM_DOMAIN;
        notice.header.destination = to;
        notice.header.request_id = 0;
        let mut woken = Vec::new();
        self.enqueue(to, notice, &mut woken);
        woken
    }

    /// Domain `id` was rolled back to its last request boundary: the request it had in
    /// hand (if any) fails with `ERESTART` and is never replayed, the calls it made since
    /// are abandoned (their replies will be dropped), and it waits for a message again,
    /// as it did at the boundary. Returns the domains woken (possibly `id` itself, when
    /// a message is already waiting for it).
    pub fn recovered(&mut self, id: DomainId, interrupted: Option<u64>) -> Vec<DomainId> {
        let mut woken = Vec::new();
        if let Some(request) = interrupted {
            self.slot_mut(id).received.remove(&request);
            self.fail_request(request, id, errno::ERESTART, &mut woken);
        }
        self.abandon_calls(id);
        let wait = Wait::Receive { from: None };
        self.slot_mut(id).activity = Activity::Waiting(wait);
        if let Some(message) = self.take_matching(id, wait) {
            self.slot_mut(id).activity = Activity::Ready(Box::new(message));
            woken.push(id);
        }
        woken
    }

    /// Puts `message` (a one-way message `id` had in hand when it faulted) back at the
    /// front of `id`'s inbox, to be delivered again after its rollback. A message from
    /// a sender that has stopped since is not replayed.
    pub fn requeue_front(&mut self, id: DomainId, message: Message) {
        let source = message.header.source;
        let sender_gone = source != VMM_DOMAIN
            && (index(source) >= self.slots.len()
                || self.slot(source).activity == Activity::Stopped);
        if sender_gone || self.slot(id).activity == Activity::Stopped {
            return;
        }
        let mut woken = Vec::new();
        let before = self.slot(id).inbox.len();
        self.enqueue(id, message, &mut woken);
        let slot = self.slot_mut(id);
        // Still queued (not handed over at once to a waiting `id`): move it first.
        if slot.inbox.len() == before + 1 {
            let last = slot.inbox.pop_back().expect("just queued");
            slot.inbox.push_front(last);
        }
    }

    /// Domain `id` was restarted from its image: every request it received and has not
    /// answered fails with `ERESTART`, its calls are abandoned, and it runs again (it
    /// will set its queues up and receive). Messages waiting in its inbox stay there.
    pub fn restarted(&mut self, id: DomainId) -> Vec<DomainId> {
        let mut woken = Vec::new();
        let mut owed: Vec<u64> = self.slot_mut(id).received.drain().collect();
        owed.sort_unstable();
        for request in owed {
            self.fail_request(request, id, errno::ERESTART, &mut woken);
        }
        self.abandon_calls(id);
        self.slot_mut(id).activity = Activity::Running;
        woken.push(id);
        woken
    }

    /// Number of domains.
    pub fn domain_count(&self) -> DomainId {
        DomainId::try_from(self.slots.len()).expect("far fewer than 2^32 domains: each is a VM")
    }

    /// Answers request `request` (owed by `callee`) with `errno` on the callee's behalf.
    fn fail_request(
        &mut self,
        request: u64,
        callee: DomainId,
        errno: Errno,
        woken: &mut Vec<DomainId>,
    ) {
        let Some(entry) = self.requests.remove(&request) else {
            return;
        };
        let reply = Message {
            header: MessageHeader {
                source: callee,
                opcode: REPLY,
                status: errno,
                request_id: request,
                ..MessageHeader::default()
            },
            ..Message::default()
        };
        self.settle(entry, reply, woken);
    }

    /// The error message that ends a refused wait, and the bookkeeping for it.
    fn refuse(&mut self, id: DomainId, wait: Wait, errno: Errno) -> Message {
        let (source, request_id) = match wait {
            Wait::Receive { .. } => (VMM_DOMAIN, 0),
            Wait::Reply { request, callee } => {
                // The callee may still answer; its reply is then dropped.
                if let Some(entry) = self.requests.get_mut(&request) {
                    entry.abandoned = true;
                }
                (callee, request)
            }
        };
        Message {
            header: MessageHeader {
                source,
                destination: id,
                opcode: REPLY,
                status: errno,
                request_id,
                ..MessageHeader::default()
            },
            ..Message::default()
        }
    }

    /// Whether `start`, following what each waiting domain waits on, reaches `target`.
    fn waits_on(&self, start: DomainId, target: DomainId) -> bool {
        let mut at = start;
        for _ in 0..self.slots.len() {
            let next = match self.slot(at).activity {
                Activity::Waiting(Wait::Receive { from: Some(from) }) => from,
                Activity::Waiting(Wait::Reply { callee, .. }) => callee,
                _ => return false,
            };
            if next == target {
                return true;
            }
            at = next;
        }
        false
    }

    fn slot(&self, id: DomainId) -> &Slot {
        &self.slots[index(id)]
    }

    fn slot_mut(&mut self, id: DomainId) -> &mut Slot {
        &mut self.slots[index(id)]
    }
}

/// The slot index of a domain id (ids start at 1; ids are checked by callers).
fn index(id: DomainId) -> usize {
    usize::try_from(id).unwrap_or(usize::MAX).wrapping_sub(1)
}

mod inbox;

#[cfg(test)]
mod bound_tests;
#[cfg(test)]
mod tests;
