//! `disk-bench`: the storage workloads of `ankh_apps::diskbench`, each delimited by a
//! pair of `Nop` hypercalls the host timestamps.
#![no_std]
#![no_main]

use ankh_apps::out::Console;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_ulib::System;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::diskbench::run(&mut System::init(boot), &mut hypercall::nop, &mut Console)
}
