//! Parked `DS_SUBSCRIBE` requests. Each is answered once, with the key that matched,
//! and then forgotten; a subscriber that wants more subscribes again.

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ankh_proto::ds::{OWNER_SUBSCRIPTIONS_MAX, SESSION_SUBSCRIPTIONS_MAX, SUBSCRIPTIONS_MAX};
use ankh_proto::errno::{self, Errno};
use ankh_proto::server::{Kernel, Reply};
use ankh_proto::{wire, Pid};

/// One parked subscription.
struct Subscription {
    /// Who asked (for [`Subscriptions::drop_source`]).
    source: Pid,
    /// The session it was charged to when parked.
    session: Pid,
    /// The request to answer.
    request_id: u64,
    /// Keys starting with this fire it.
    prefix: String,
}

/// The parked subscriptions, oldest first (they fire in that order).
#[derive(Default)]
pub(crate) struct Subscriptions {
    parked: Vec<Subscription>,
}

impl Subscriptions {
    /// Number parked.
    pub(crate) fn len(&self) -> usize {
        self.parked.len()
    }

    /// Parks a subscription of `source`, of session `session`; `EAGAIN` when
    /// `SUBSCRIPTIONS_MAX` are parked already, `SESSION_SUBSCRIPTIONS_MAX` of the
    /// session's or `OWNER_SUBSCRIPTIONS_MAX` of `source`'s.
    pub(crate) fn park(
        &mut self,
        source: Pid,
        session: Pid,
        request_id: u64,
        prefix: &str,
    ) -> Result<(), Errno> {
        let mine = self.parked.iter().filter(|s| s.source == source).count();
        let ours = self.parked.iter().filter(|s| s.session == session).count();
        if self.parked.len() >= SUBSCRIPTIONS_MAX
            || ours >= SESSION_SUBSCRIPTIONS_MAX
            || mine >= OWNER_SUBSCRIPTIONS_MAX
        {
            return Err(errno::EAGAIN);
        }
        self.parked.push(Subscription {
            source,
            session,
            request_id,
            prefix: prefix.to_string(),
        });
        Ok(())
    }

    /// Answers (with `key\0`) and forgets every subscription whose prefix `key` has.
    pub(crate) fn fire(&mut self, key: &str, kernel: &mut dyn Kernel) {
        let (fired, kept): (Vec<_>, Vec<_>) = core::mem::take(&mut self.parked)
            .into_iter()
            .partition(|s| key.starts_with(s.prefix.as_str()));
        self.parked = kept;
        for subscription in fired {
            kernel.reply(
                subscription.request_id,
                Reply::ok_with_bulk(Vec::new(), wire::join([key])),
            );
        }
    }

    /// Answers the subscriptions of `source` with `ESRCH` and forgets them; returns
    /// how many.
    pub(crate) fn drop_source(&mut self, source: Pid, kernel: &mut dyn Kernel) -> usize {
        let (dropped, kept): (Vec<_>, Vec<_>) = core::mem::take(&mut self.parked)
            .into_iter()
            .partition(|s| s.source == source);
        self.parked = kept;
        for subscription in &dropped {
            kernel.reply(subscription.request_id, Reply::err(errno::ESRCH));
        }
        dropped.len()
    }
}
