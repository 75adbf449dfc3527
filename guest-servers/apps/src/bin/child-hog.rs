//! Opens files until refused, reports the errno to its parent and blocks (see
//! `ankh_apps::helpers::hog`).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_apps::helpers::hog(&mut ankh_apps::restart::watched_system(boot))
}
