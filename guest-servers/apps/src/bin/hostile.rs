//! An unprivileged program that tries to take more than its share of the servers
//! (see `ankh_apps::hostile`); its argument picks the attack.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_guest_rt::BootInfo;
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::hostile::run(&mut System::init(boot), &mut Console)
}
