//! The file server's image: `ankh_vfs::Vfs` served by `ankh_serve`. When it starts it
//! mounts the disk of its `blk` peer, or, without one, loads the root file system
//! archive from the VMM into memory.
#![no_std]
#![no_main]

use ankh_guest_rt::BootInfo;
use ankh_vfs::{Config, Vfs};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    ankh_serve::run(boot, Vfs::for_domain(Config::default()))
}
