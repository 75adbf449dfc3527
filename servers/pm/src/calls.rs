//! Calling other servers: statuses as errors.

pub(crate) use ankh_proto::server::{call_checked as call, call_retrying};
