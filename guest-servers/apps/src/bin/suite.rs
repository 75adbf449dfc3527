//! The OS conformance suite (see `ankh_apps::suite`): ends with `N passed, M failed`.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_apps::suite::{self, Sections};
use ankh_guest_rt::BootInfo;
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    suite::run(&mut System::init(boot), &mut Console, Sections::ALL)
}
