//! The file server's image: `ankh_vfs::Vfs` served by `ankh_serve` (it loads the root
//! file system from the VMM when it starts).
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_vfs::Vfs;

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_serve::run(boot, Vfs::new())
}
