//! How a worker thread holds the process manager's kernel calls, and a server's
//! replies to requests other than the one in hand, while its window is open, carries
//! them out once its state is exposed, and undoes them when it is rolled back (the
//! rules are in the module docs of `system::held`).

use virtio_seep::errno::{self, Errno};
use virtio_seep::message::{DomainId, VMM_DOMAIN};
use virtio_seep::opcode;

use super::Worker;
use crate::fault::DomainFault;
use crate::ipc::router::{Activity, Role};
use crate::ipc::Message;
use crate::system::held::{Effect, HeldEffects};
use crate::system::process_manager::{domain_stopped, spawn_notice_child, ExitCause};

impl Worker<'_> {
    /// Whether the VMM holds the effect of `message`, which domain `id` sends now, or
    /// knows that a rollback of `id` undoes it: a kernel call that changes the world
    /// (while `id`'s window is open and its request has room for another held
    /// effect), or a spawn notice about a domain `id` created in this request and
    /// that has not run. Only the process manager makes such calls (the router
    /// refuses them from anyone else; a process has no window).
    pub(super) fn holds(&self, id: DomainId, message: &Message) -> bool {
        let window_open = self
            .slots
            .get(&id)
            .and_then(|slot| slot.recovery.as_ref())
            .is_some_and(|recovery| recovery.window_open());
        if !window_open {
            return false;
        }
        let held = self.held_effects.get(&id);
        if message.header.opcode == opcode::REPLY {
            let own = self
                .slots
                .get(&id)
                .and_then(|slot| slot.recovery.as_ref())
                .is_some_and(|recovery| recovery.answers(message.header.request_id));
            // Only a reply the router would route now: one it would refuse is the
            // server's fault at once, as it always was.
            let request = message.header.request_id;
            return !own
                && self.lock().router.owes(id, request)
                && held.is_none_or(HeldEffects::has_room);
        }
        let kernel_call = message.header.destination == VMM_DOMAIN
            && matches!(
                message.header.opcode,
                opcode::SYS_CREATE_DOMAIN | opcode::SYS_START_DOMAIN | opcode::SYS_KILL_DOMAIN
            );
        if kernel_call {
            return held.is_none_or(HeldEffects::has_room);
        }
        match (spawn_notice_child(message), held) {
            (Some(child), Some(held)) => held.is_created_unstarted(child),
            _ => false,
        }
    }

    /// The held effects of caller `id`, for a kernel call being held.
    pub(super) fn held_for(&mut self, id: DomainId) -> &mut HeldEffects {
        self.held_effects.entry(id).or_default()
    }

    /// Carries out the effects domain `id` holds if its window is no longer open
    /// (the message it sends now exposes its state, or it answered).
    pub(super) fn release_if_exposed(&mut self, id: DomainId) {
        let exposed = self
            .slots
            .get(&id)
            .and_then(|slot| slot.recovery.as_ref())
            .is_none_or(|recovery| !recovery.window_open());
        if exposed {
            self.release_held(id);
        }
    }

    /// Carries out the effects domain `id` holds, in the order it asked for them.
    pub(super) fn release_held(&mut self, id: DomainId) {
        let Some(held) = self.held_effects.get_mut(&id) else {
            return;
        };
        if held.is_empty() {
            return;
        }
        for effect in held.release() {
            match effect {
                Effect::Kill(target) => self.perform_kill(id, target),
                Effect::Start(child) => {
                    let index = self.thread.index;
                    self.lock().turns.push_back(index, child);
                }
                Effect::Reply(reply) => {
                    let now = std::time::Instant::now();
                    let mut state = self.lock();
                    // It was owed when it was held: only a request failed meanwhile
                    // (its caller ended) is no longer, and its reply has nobody to
                    // go to.
                    if let Ok((woken, _)) = state.router.submit(id, [*reply], now) {
                        self.thread.schedule_at(&mut state, &woken, now);
                    }
                }
            }
        }
    }

    /// Domain `id` was rolled back or restarted: what it held is dropped, the domains
    /// it created in the request are destroyed (PM hears of their end as of any
    /// other, and has VFS, MM and DS forget them), and a start it asked for of a
    /// domain created earlier is held again.
    pub(super) fn undo_held(&mut self, id: DomainId) {
        let Some(held) = self.held_effects.get_mut(&id) else {
            return;
        };
        let undo = held.roll_back();
        self.held.extend(undo.hold_again);
        for child in undo.destroy {
            self.held.remove(&child);
            let alive = self.slots.get(&child).is_some_and(|slot| {
                !matches!(slot.domain.state(), crate::domain::DomainState::Stopped(_))
            });
            if alive {
                self.fail(child, DomainFault::Killed { by: id });
            }
        }
    }

    /// Checks a kill of `target` asked for by `caller`: `ESRCH` if there is no such
    /// running domain (or its kill is held already), `EPERM` if it is not a process.
    pub(super) fn check_kill(&self, caller: DomainId, target: DomainId) -> Result<(), Errno> {
        let state = self.lock();
        if target == VMM_DOMAIN
            || target > state.router.domain_count()
            || *state.router.activity(target) == Activity::Stopped
            || self
                .held_effects
                .get(&caller)
                .is_some_and(|held| held.kills(target))
        {
            return Err(errno::ESRCH);
        }
        if state.router.role(target) != Role::Process {
            return Err(errno::EPERM);
        }
        Ok(())
    }

    /// Stops process `target` for `caller`, unless it has stopped since the kill was
    /// checked (it ended by itself: PM hears of that end instead).
    pub(super) fn perform_kill(&mut self, caller: DomainId, target: DomainId) {
        {
            let mut state = self.lock();
            if *state.router.activity(target) == Activity::Stopped {
                return;
            }
            if !self.slots.contains_key(&target) {
                // Another thread's domain: stop it in the router now; its thread marks
                // the domain itself when it sees it again.
                state.killed.insert(target, caller);
                let woken = domain_stopped(&mut state.router, target, ExitCause::KILLED);
                self.thread.schedule(&mut state, &woken);
                return;
            }
        }
        // Ours, so it is not running (we are).
        self.fail(target, DomainFault::Killed { by: caller });
    }
}
