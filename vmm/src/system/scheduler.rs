//! What the host threads of a system share: the router, each thread's ready queue and
//! turn, and the run's records (see the module docs of `system` for the policy).

use std::collections::{HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use virtio_seep::message::DomainId;

use ankh_recovery::{CoverageStats, RecoveryEvent};

use super::{Resumption, SystemStop};
use crate::ipc::router::Router;

/// The CPU time a domain (with the domains it switches to directly: its callees, and
/// their replies back to it) runs before the others of its thread get their turn.
/// Exits and direct switches cost about 10 us here: a turn is about a thousand of
/// them. See docs/ipc.md, "Threads and scheduling".
pub const QUANTUM: Duration = Duration::from_millis(10);

/// What the threads share.
pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    /// Signalled when a thread has new work, or the run ends.
    pub(super) changed: Condvar,
}

/// The state behind [`Shared`]'s lock.
pub(super) struct State {
    pub(super) router: Router,
    /// The ready queues and turns of the threads.
    pub(super) turns: Turns,
    /// Every domain's name.
    pub(super) names: HashMap<DomainId, String>,
    /// Domains killed from another thread, not yet marked by their own.
    pub(super) killed: FxHashMap<DomainId, DomainId>,
    /// The domains a process created at run time may call when its parent is not a
    /// process: everything the description's processes may call.
    pub(super) process_callees: Vec<DomainId>,
    /// Requests finished inside / outside their recovery window, per domain.
    pub(super) coverage: CoverageStats,
    /// Every recovery, in order.
    pub(super) recoveries: Vec<RecoveryEvent>,
    /// Each recovered domain's first reply after its recovery.
    pub(super) resumptions: Vec<Resumption>,
    /// Why the system was stopped early (a halt or a controlled shutdown).
    pub(super) stop: Option<SystemStop>,
}

impl State {
    /// Ends the run with `stop` (the first reason given wins): every thread returns at
    /// its next look.
    pub(super) fn stop(&mut self, stop: SystemStop) {
        if self.stop.is_none() {
            self.stop = Some(stop);
        }
        self.turns.done = true;
    }
}

/// Which thread runs each domain, the threads' ready queues and their turns.
pub(super) struct Turns {
    /// Per thread: domains ready to run, the next one first.
    ready: Vec<VecDeque<DomainId>>,
    /// Per thread: when the current turn ends (see [`QUANTUM`]).
    turn_ends: Vec<Instant>,
    /// Per thread: how many domains at the front of the ready queue were put there by
    /// a direct switch, and run on in the current turn instead of starting one of
    /// their own. A count, not the last one so put: a step that woke two domains put
    /// both first, and the second, no longer "the direct one", started a fresh turn;
    /// a loop of spawns and kills, which does that at every round, and PM then kept
    /// the thread for as long as the loop ran.
    inheriting: Vec<usize>,
    /// Per thread: the current turn was seen to be over (by a wake-up or a preemption
    /// after its end) and no new one has started: the domains woken into it that have
    /// not run yet then wait behind the others.
    over: Vec<bool>,
    /// Which thread runs each domain.
    thread_of: FxHashMap<DomainId, usize>,
    /// Domains being run (or injected into) right now.
    running: usize,
    /// The system is quiet or stopped: every thread returns.
    done: bool,
}

impl Turns {
    /// `threads` threads, with `domains` (id, thread) ready in this order.
    pub(super) fn new(
        threads: usize,
        domains: impl IntoIterator<Item = (DomainId, usize)>,
    ) -> Turns {
        let mut turns = Turns {
            ready: vec![VecDeque::new(); threads],
            turn_ends: vec![Instant::now(); threads],
            inheriting: vec![0; threads],
            over: vec![false; threads],
            thread_of: FxHashMap::default(),
            running: 0,
            done: false,
        };
        for (id, thread) in domains {
            turns.ready[thread].push_back(id);
            turns.thread_of.insert(id, thread);
        }
        turns
    }

    /// Domain `id` (created at run time) runs on `thread`; it is not ready yet.
    pub(super) fn place(&mut self, id: DomainId, thread: usize) {
        self.thread_of.insert(id, thread);
    }

    /// Puts `id` at the back of `thread`'s ready queue.
    pub(super) fn push_back(&mut self, thread: usize, id: DomainId) {
        self.ready[thread].push_back(id);
    }

    /// Whether the run is over.
    pub(super) fn done(&self) -> bool {
        self.done
    }

    /// Puts woken domains on their threads' ready queues: the current thread's at the
    /// front while the current turn lasts (the direct switch: the woken domain runs on
    /// in that turn), else and on other threads at the back. Returns whether another
    /// thread must be woken. `now` is the current time.
    pub(super) fn schedule(
        &mut self,
        woken: &[DomainId],
        current_thread: usize,
        now: Instant,
    ) -> bool {
        let mut other = false;
        let in_turn = now < self.turn_ends[current_thread];
        self.over[current_thread] |= !in_turn;
        for id in woken.iter().rev() {
            let thread = self.thread_of[id];
            if thread == current_thread && in_turn {
                self.ready[thread].push_front(*id);
                self.inheriting[thread] += 1;
            } else {
                self.ready[thread].push_back(*id);
                other |= thread != current_thread;
            }
        }
        other
    }

    /// The next domain of `thread` to run, and when its turn ends: the turn it
    /// inherits through a direct switch, or a new one. Domains woken into a turn
    /// that is over go behind the others first, each to a turn of its own (with
    /// nobody else ready, they share a new one). Counts it as running.
    pub(super) fn next_ready(&mut self, thread: usize) -> Option<(DomainId, Instant)> {
        let queue = &mut self.ready[thread];
        let woken_into = self.inheriting[thread];
        if self.over[thread] && woken_into > 0 && queue.len() > woken_into {
            queue.rotate_left(woken_into);
            self.inheriting[thread] = 0;
        }
        let id = queue.pop_front()?;
        let inherits = self.inheriting[thread] > 0 && !self.over[thread];
        self.inheriting[thread] = self.inheriting[thread].saturating_sub(1);
        if !inherits {
            self.turn_ends[thread] = Instant::now() + QUANTUM;
            self.over[thread] = false;
        }
        self.running += 1;
        Some((id, self.turn_ends[thread]))
    }

    /// Counts one more domain being worked on outside the ready queues (an injection).
    pub(super) fn begin_work(&mut self) {
        self.running += 1;
    }

    /// A thread finished running (or injecting into) a domain. Returns true when
    /// that made the system quiet (nothing runs, nothing is ready): the run is done.
    pub(super) fn end_work(&mut self) -> bool {
        self.running -= 1;
        if self.ready.iter().all(VecDeque::is_empty) && self.running == 0 {
            self.done = true;
            return true;
        }
        false
    }

    /// The turn of running domain `id` of `thread` is over at `now`: when another
    /// domain of the thread is ready, `id` goes to the back of the queue and `None`
    /// is returned; else a new turn starts, and when it ends is returned.
    pub(super) fn turn_over(
        &mut self,
        thread: usize,
        id: DomainId,
        now: Instant,
    ) -> Option<Instant> {
        if self.ready[thread].is_empty() {
            self.turn_ends[thread] = now + QUANTUM;
            self.over[thread] = false;
            return Some(self.turn_ends[thread]);
        }
        self.over[thread] = true;
        self.ready[thread].push_back(id);
        None
    }
}

#[cfg(test)]
mod tests;
