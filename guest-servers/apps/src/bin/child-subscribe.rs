//! Waits on a DS subscription and acknowledges it (see
//! `ankh_apps::helpers::subscriber`).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::helpers::subscriber(&mut ankh_apps::restart::watched_system(boot))
}
