//! Echoes an inherited pipe into another until end of file (see
//! `ankh_apps::helpers::pipe_child`).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::helpers::pipe_child(&mut ankh_apps::restart::watched_system(boot))
}
