//! Held effects: the process manager's kernel calls, and any server's replies to
//! requests other than the one in hand, that the VMM carries out only once the
//! server's state is exposed, so that they can be dropped when it is rolled back.
//!
//! PM's kernel calls change the world outside PM: a killed domain stops, a started
//! one runs, a created one exists (and VFS and MM learn about it). Done at once, each
//! would close PM's recovery window, since a rollback of PM could not undo it. While
//! PM's window is open the VMM instead *holds* them for the request in hand
//! (docs/recovery.md, "Held effects"):
//! - `SYS_KILL_DOMAIN` is checked now (the answer is the one PM would get at once)
//!   and carried out later;
//! - `SYS_START_DOMAIN` likewise;
//! - `SYS_CREATE_DOMAIN` makes the domain now (held, not running), and remembers it
//!   as created in this request: a rollback destroys it.
//!
//! A reply to a request other than the one in hand (a parked request: PM answering a
//! `wait` when it handles a process's end, VFS waking a pipe reader) is held the same
//! way, by any server whose window is open: sent at once, it exposed the server's
//! state and closed the window, and a fault later in the handler had no consistent
//! recovery. Held, it leaves when the server's state is exposed anyway; after a
//! rollback the parked request is still parked in the server's restored state, and the
//! replay or the retry of what was in hand answers it again.
//!
//! The held effects are carried out, in the order PM asked for them, at the first
//! moment PM exposes its state: before the message that closes its window leaves (its
//! reply to the request in hand included), or when it waits for a new message without
//! having answered. A rollback (or restart) of PM drops them and destroys the domains
//! created in the request. At most [`HELD_PER_REQUEST`] are held per request, charged
//! to PM: beyond that a kernel call is carried out at once, and closes the window as
//! it always did.

use virtio_seep::message::DomainId;

use crate::ipc::Message;

/// How many effects (kills, starts, creations, replies) one request may hold.
pub(super) const HELD_PER_REQUEST: usize = 8;

/// What is carried out once the caller's state is exposed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Stop process `target` (at the request of the caller who holds it).
    Kill(DomainId),
    /// Let held domain `id` run.
    Start(DomainId),
    /// Send this reply to a request other than the one in hand.
    Reply(Box<Message>),
}

/// What a rollback of the caller undoes.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Undo {
    /// Domains created in the request: destroyed.
    pub(super) destroy: Vec<DomainId>,
    /// Domains created before the request whose start was held: held again.
    pub(super) hold_again: Vec<DomainId>,
}

/// The effects one caller holds for the request in hand.
#[derive(Debug, Default)]
pub(super) struct HeldEffects {
    /// Kills and starts, in the order they were asked for.
    effects: Vec<Effect>,
    /// Domains created in the request (held, not running).
    created: Vec<DomainId>,
}

impl HeldEffects {
    /// Whether another effect may be held in this request.
    pub(super) fn has_room(&self) -> bool {
        self.effects.len() + self.created.len() < HELD_PER_REQUEST
    }

    /// Whether nothing is held.
    pub(super) fn is_empty(&self) -> bool {
        self.effects.is_empty() && self.created.is_empty()
    }

    /// Holds `effect` (the caller checked [`has_room`](Self::has_room)).
    pub(super) fn hold(&mut self, effect: Effect) {
        debug_assert!(self.has_room());
        self.effects.push(effect);
    }

    /// Domain `id` was created in the request.
    pub(super) fn created(&mut self, id: DomainId) {
        debug_assert!(self.has_room());
        self.created.push(id);
    }

    /// Whether `id` was created in this request and its start, if asked for, is
    /// still held: no other domain has seen it run, and a rollback destroys it.
    pub(super) fn is_created_unstarted(&self, id: DomainId) -> bool {
        self.created.contains(&id)
    }

    /// Whether a reply to `request` is held already.
    pub(super) fn replies_to(&self, request: u64) -> bool {
        self.effects
            .iter()
            .any(|e| matches!(e, Effect::Reply(reply) if reply.header.request_id == request))
    }

    /// Whether a kill of `target` is held already (a second kill is answered as if
    /// the first had been carried out).
    pub(super) fn kills(&self, target: DomainId) -> bool {
        self.effects.contains(&Effect::Kill(target))
    }

    /// The caller's state is exposed: the effects to carry out now, in order. The
    /// domains created in the request are the caller's for good.
    pub(super) fn release(&mut self) -> Vec<Effect> {
        self.created.clear();
        std::mem::take(&mut self.effects)
    }

    /// The caller was rolled back: the held effects are dropped; what to undo.
    pub(super) fn roll_back(&mut self) -> Undo {
        let destroy = std::mem::take(&mut self.created);
        let hold_again = std::mem::take(&mut self.effects)
            .into_iter()
            .filter_map(|e| match e {
                Effect::Start(id) if !destroy.contains(&id) => Some(id),
                _ => None,
            })
            .collect();
        Undo {
            destroy,
            hold_again,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effects_are_released_in_order_once() {
        let mut held = HeldEffects::default();
        assert!(held.is_empty());
        held.created(7);
        held.hold(Effect::Start(7));
        held.hold(Effect::Kill(5));
        assert!(held.is_created_unstarted(7) && held.kills(5));
        assert!(!held.kills(7) && !held.is_created_unstarted(5));
        assert_eq!(held.release(), [Effect::Start(7), Effect::Kill(5)]);
        assert!(held.is_empty());
        assert!(
            !held.is_created_unstarted(7),
            "released: no longer undoable"
        );
        assert_eq!(held.release(), []);
        assert_eq!(held.roll_back(), Undo::default(), "nothing left to undo");
    }

    #[test]
    fn a_rollback_drops_the_effects_and_undoes_creations() {
        let mut held = HeldEffects::default();
        held.created(9);
        held.hold(Effect::Start(9));
        held.hold(Effect::Start(6)); // created in an earlier request
        held.hold(Effect::Kill(5));
        assert_eq!(
            held.roll_back(),
            Undo {
                destroy: vec![9],
                hold_again: vec![6],
            }
        );
        assert!(held.is_empty());
        assert_eq!(held.release(), [], "a dropped kill is never carried out");
    }

    #[test]
    fn a_request_holds_a_bounded_number_of_effects() {
        let mut held = HeldEffects::default();
        for n in 0..HELD_PER_REQUEST {
            assert!(held.has_room(), "{n}");
            match n % 2 {
                0 => held.created(u32::try_from(n).unwrap() + 10),
                _ => held.hold(Effect::Kill(u32::try_from(n).unwrap() + 10)),
            }
        }
        assert!(!held.has_room());
        held.release();
        assert!(held.has_room(), "the bound is per request");
    }
}
