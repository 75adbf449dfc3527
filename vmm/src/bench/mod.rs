//! Benchmarks behind `ankh bench`. Each prints its figures beside a baseline measured
//! in the same run, because absolute times on nested-virtualization hosts mean little.
//! They are never pass/fail tests.

pub mod blk;
pub mod boot;
pub mod ipc;
pub mod modes;
pub mod recovery;
pub mod stats;
pub mod storage;
pub mod ubench;
