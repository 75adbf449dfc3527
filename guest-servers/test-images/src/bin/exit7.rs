//! Exits with code 7 and does nothing else.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::EXIT7_CODE;

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    EXIT7_CODE
}
