//! The data store's image: `ankh_ds::DataStore` served by `ankh_serve`; it takes
//! process lifecycle messages only from PM when it can tell PM's id
//! (`ankh_os::conventions::domain_id`).
#![no_std]
#![no_main]

use ankh_ds::DataStore;
use ankh_guest_rt::BootInfo;
use ankh_os::conventions::domain_id;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let store = DataStore::new();
    let store = match domain_id(boot, "pm") {
        Some(pm) => store.with_process_manager(pm),
        None => store,
    };
    ankh_serve::run(boot, store)
}
