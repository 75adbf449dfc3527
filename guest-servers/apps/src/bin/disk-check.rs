//! `disk-check`: see `ankh_apps::durability`.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_guest_rt::BootInfo;
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::durability::check_all(&mut System::init(boot), &mut Console)
}
