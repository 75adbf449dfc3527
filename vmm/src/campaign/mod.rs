//! Fault-injection campaigns (`ankh campaign`): OSIRIS's survivability evaluation,
//! with faults injected by the VMM into unmodified server images through the CPU's
//! debug facilities (`domain::debug`).
//!
//! - `plan`: the golden run's profile, the seeded fault list, shards;
//! - `run`: one experiment (a fresh OS, one fault) and its outcome, the golden and
//!   profile runs;
//! - `results`: JSON lines on disk, merging shards;
//! - `report`: the tables, with Wilson intervals.

pub mod plan;
pub mod report;
pub mod results;
pub mod run;
