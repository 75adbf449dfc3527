//! Exits with code 3 (`ankh_apps::paths::CHILD_EXIT3_CODE`) and does nothing else.
#![no_std]
#![no_main]

use ankh_apps::paths::CHILD_EXIT3_CODE;
use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    CHILD_EXIT3_CODE.unsigned_abs()
}
