//! Malformed requests to every server (see `ankh_apps::flood`); ends with
//! `flood: done`.
#![no_std]
#![no_main]

use ankh_apps::flood::{self, ITERATIONS};
use ankh_apps::out::Console;
use ankh_guest_rt::BootInfo;
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    flood::run(&mut System::init(boot), &mut Console, ITERATIONS)
}
