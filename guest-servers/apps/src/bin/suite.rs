//! The OS conformance suite (see `ankh_apps::suite`): ends with `N passed, M failed`;
//! `suite --runs N` runs it N times in a row.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_apps::restart::watched_system;
use ankh_apps::suite::runs;
use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let mut os = watched_system(boot);
    runs::main(&mut os, &mut Console)
}
