//! The data store's image: `ankh_ds::DataStore` served by `ankh_serve`.
#![no_std]
#![no_main]

use ankh_ds::DataStore;
use ankh_guest_rt::BootInfo;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_serve::run(boot, DataStore::new())
}
