//! The router's inboxes and their books: what each message costs and whom it is
//! charged to (docs/ipc.md, "Bounds"). Every message goes in through `enqueue` and
//! out through `remove_from_inbox`, which keep the counts and bytes exact.

use virtio_seep::errno;
use virtio_seep::message::{DomainId, MessageHeader, VMM_DOMAIN};
use virtio_seep::opcode::REPLY;

use super::{index, Activity, Message, Request, Router, Wait};

/// The bytes a message holds in the router.
pub(super) fn size_of_message(message: &Message) -> usize {
    size_of::<MessageHeader>() + message.payload.len() + message.bulk.len()
}

impl Router {
    /// Hands the reply to a finished request to its caller, or drops it when the
    /// caller no longer wants it. A reply that would take the caller's inbox, or all
    /// inboxes together, over their byte bounds loses its data and carries `ENOBUFS`
    /// (the caller is not taking its replies: it pays for that, not the server).
    pub(super) fn settle(&mut self, entry: Request, mut reply: Message, woken: &mut Vec<DomainId>) {
        let caller = entry.caller;
        if entry.abandoned || self.slot(caller).activity == Activity::Stopped {
            let slot = self.slot_mut(caller);
            slot.outstanding = slot.outstanding.saturating_sub(1);
            return;
        }
        reply.header.destination = caller;
        if self.over_bytes(caller, size_of_message(&reply)) {
            reply.payload = Vec::new();
            reply.bulk = Vec::new();
            reply.header.payload_len = 0;
            reply.header.bulk_len = 0;
            reply.header.status = errno::ENOBUFS;
        }
        self.enqueue(caller, reply, woken);
    }

    /// Whether `size` more bytes would take `to`'s inbox or all inboxes over bounds.
    pub(super) fn over_bytes(&self, to: DomainId, size: usize) -> bool {
        self.slot(to).inbox_bytes + size > self.limits.inbox_bytes
            || self.held_bytes + size > self.limits.total_bytes
    }

    /// Whether a request of `size` bytes from `from` to `to` must be refused with
    /// `EAGAIN`: `to`'s inbox is over its bounds and `from` already used its share of
    /// it, or all inboxes together are over theirs.
    pub(super) fn inbox_full(&self, to: DomainId, from: DomainId, size: usize) -> bool {
        let slot = self.slot(to);
        let share = slot.inbox_from.get(&from).copied().unwrap_or(0);
        let full = slot.inbox.len() >= self.limits.inbox || self.over_bytes(to, size);
        (full && share >= self.limits.inbox_share)
            || self.held_bytes + size > self.limits.total_bytes
    }

    /// Domain `id` no longer wants the replies to the calls it made (it was rolled
    /// back or restarted): they are dropped when they come, and those already in its
    /// inbox go now.
    pub(super) fn abandon_calls(&mut self, id: DomainId) {
        for request in self.requests.values_mut().filter(|r| r.caller == id) {
            request.abandoned = true;
        }
        self.drain_inbox(id, |m| m.header.opcode == REPLY, false);
    }

    /// Removes from `id`'s inbox every message `drop` selects, keeping the books;
    /// with `forget_requests`, the requests among them are forgotten too (their caller
    /// is gone), else they stay owed.
    pub(super) fn drain_inbox(
        &mut self,
        id: DomainId,
        drop: impl Fn(&Message) -> bool,
        forget_requests: bool,
    ) {
        let mut at = 0;
        while at < self.slot(id).inbox.len() {
            if drop(&self.slot(id).inbox[at]) {
                let message = self.remove_from_inbox(id, at);
                let request = message.header.opcode != REPLY && message.header.request_id != 0;
                if forget_requests && request {
                    // A request nobody will serve: its caller hears nothing more (it
                    // is gone, or it is this domain's own, which stopped).
                    if let Some(entry) = self.requests.remove(&message.header.request_id) {
                        let caller = self.slot_mut(entry.caller);
                        caller.outstanding = caller.outstanding.saturating_sub(1);
                    }
                }
            } else {
                at += 1;
            }
        }
    }

    /// Takes message `at` out of `id`'s inbox, keeping the books: bytes, the sender's
    /// share and one-way count, the receiver's replies in flight.
    pub(super) fn remove_from_inbox(&mut self, id: DomainId, at: usize) -> Message {
        let slot = self.slot_mut(id);
        let message = slot.inbox.remove(at).expect("position is in range");
        let size = size_of_message(&message);
        slot.inbox_bytes -= size;
        let source = message.header.source;
        if message.header.opcode == REPLY {
            if message.header.request_id != 0 {
                slot.outstanding = slot.outstanding.saturating_sub(1);
            }
        } else if let Some(count) = slot.inbox_from.get_mut(&source) {
            *count -= 1;
            if *count == 0 {
                slot.inbox_from.remove(&source);
            }
        }
        self.held_bytes -= size;
        let one_way = message.header.opcode != REPLY && message.header.request_id == 0;
        if one_way && source != VMM_DOMAIN && index(source) < self.slots.len() {
            let sender = self.slot_mut(source);
            sender.one_way = sender.one_way.saturating_sub(1);
        }
        message
    }

    /// Queues `message` for `to`, handing it over at once if `to` waits for it.
    pub(super) fn enqueue(&mut self, to: DomainId, message: Message, woken: &mut Vec<DomainId>) {
        let size = size_of_message(&message);
        let source = message.header.source;
        let one_way = message.header.opcode != REPLY && message.header.request_id == 0;
        if message.header.opcode != REPLY {
            *self.slot_mut(to).inbox_from.entry(source).or_default() += 1;
        }
        if one_way && source != VMM_DOMAIN {
            self.slot_mut(source).one_way += 1;
        }
        let slot = self.slot_mut(to);
        slot.inbox_bytes += size;
        slot.inbox.push_back(message);
        self.held_bytes += size;
        if let Activity::Waiting(wait) = self.slot(to).activity {
            if let Some(message) = self.take_matching(to, wait) {
                self.slot_mut(to).activity = Activity::Ready(Box::new(message));
                woken.push(to);
            }
        }
    }

    /// Removes from `id`'s inbox the first message `wait` accepts.
    pub(super) fn take_matching(&mut self, id: DomainId, wait: Wait) -> Option<Message> {
        let slot = self.slot_mut(id);
        let position = slot.inbox.iter().position(|m| match wait {
            Wait::Receive { from } => from.is_none_or(|from| m.header.source == from),
            Wait::Reply { request, .. } => {
                m.header.opcode == REPLY && m.header.request_id == request
            }
        })?;
        let message = self.remove_from_inbox(id, position);
        if message.header.opcode != REPLY && message.header.request_id != 0 {
            self.slot_mut(id).received.insert(message.header.request_id);
        }
        Some(message)
    }
}
