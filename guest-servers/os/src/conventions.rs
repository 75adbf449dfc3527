//! What the server images assume about the system description.
//!
//! A server learns the ids of the domains it may call from its boot information
//! (`BootInfo::peer`). Some ids it needs belong to domains it does not call: PM must
//! know init's pid (init is not spawned, it is a domain of the description, and PM
//! cannot call it), and MM wants PM's id to accept process lifecycle messages from PM
//! only (MM does not call PM). Those follow from one convention:
//!
//! **The system description lists the OS domains consecutively in the order of
//! [`SYSTEM_ORDER`]: `ds`, `vfs`, `mm`, `pm`, `init`.** Domains are numbered from 1 in
//! the order of the description, so each of these domains is its own id plus the
//! distance in that list: init's pid is PM's id + 1, PM's id is MM's id + 1, and so on.
//! A peer named in the boot information always wins over the convention.

use virtio_seep::abi::boot::BootInfo;
use virtio_seep::message::DomainId;

/// The OS domains, in the order the system description lists them (consecutively).
pub const SYSTEM_ORDER: [&str; 5] = ["ds", "vfs", "mm", "pm", "init"];

/// The position of `name` in [`SYSTEM_ORDER`].
fn position(name: &str) -> Option<usize> {
    SYSTEM_ORDER.iter().position(|&entry| entry == name)
}

/// The domain id of `name` as seen from the domain `own` (named `own_name`): by the
/// ordering convention, `None` when either name is not in [`SYSTEM_ORDER`] or the
/// arithmetic leaves the domain ids (below 1 or above `u32::MAX`).
pub fn by_order(own_name: &str, own: DomainId, name: &str) -> Option<DomainId> {
    let (from, to) = (position(own_name)?, position(name)?);
    let id = i64::from(own) + i64::try_from(to).ok()? - i64::try_from(from).ok()?;
    DomainId::try_from(id).ok().filter(|&id| id >= 1)
}

/// The domain id of `name` for the domain described by `boot`: its peer of that name,
/// or else [`by_order`] from the domain's own name and id.
pub fn domain_id(boot: &BootInfo, name: &str) -> Option<DomainId> {
    boot.peer(name)
        .or_else(|| by_order(boot.name(), boot.domain_id, name))
}

/// init's pid, for PM: init's domain id by the convention (PM's id + 1).
pub fn init_pid(boot: &BootInfo) -> Option<DomainId> {
    domain_id(boot, "init")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_the_order() {
        assert_eq!(by_order("pm", 4, "init"), Some(5));
        assert_eq!(by_order("mm", 3, "pm"), Some(4));
        assert_eq!(by_order("pm", 4, "ds"), Some(1));
        assert_eq!(by_order("ds", 7, "init"), Some(11));
        assert_eq!(by_order("pm", 3, "ds"), None);
        assert_eq!(by_order("echo", 4, "init"), None);
        assert_eq!(by_order("pm", u32::MAX, "init"), None);
    }
}
