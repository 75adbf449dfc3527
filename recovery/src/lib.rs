//! Recovery decisions of Ankh, after the OSIRIS model.
//!
//! This crate will own the recovery-window state machine of each server domain, the
//! classification of outgoing messages under each policy (none, stateless, naive,
//! pessimistic, enhanced), the decision table (rollback with an error reply, restart,
//! controlled shutdown, halt), escalation and the recovery event records. It decides;
//! the VMM acts. It never touches KVM or guest memory and has no `unsafe`, so it can be
//! tested exhaustively on the host.
//!
//! Today it is empty: the recovery issue fills it.
#![forbid(unsafe_code)]
