//! The memory manager's image: `ankh_mm::MemoryManager` with the default limits,
//! served by `ankh_serve`; it takes process lifecycle messages only from PM when it can
//! tell PM's id (`ankh_os::conventions::domain_id`).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_mm::MemoryManager;
use ankh_os::conventions::domain_id;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let manager = MemoryManager::default();
    let manager = match domain_id(boot, "pm") {
        Some(pm) => manager.with_process_manager(pm),
        None => manager,
    };
    ankh_serve::run(boot, manager)
}
