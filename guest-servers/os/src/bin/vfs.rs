//! The file server's image: `ankh_vfs::Vfs` served by `ankh_serve`. When it starts it
//! mounts the disk of its `blk` peer, or, without one, loads the root file system
//! archive from the VMM into memory. In a process domain its disk's block cache is
//! tracked by declared writes (`ankh_guest_rt::declared`).
#![no_std]
#![no_main]

use ankh_guest_rt::declared;
use ankh_guest_rt::BootInfo;
use ankh_vfs::{Config, DeclaredWrites, Vfs};

ankh_guest_rt::entry!(main);

fn main(boot: &BootInfo) -> u32 {
    let config = Config {
        declared_writes: Some(DeclaredWrites {
            region: declared::region,
            will_write: declared::will_write,
        }),
        ..Config::default()
    };
    ankh_serve::run(boot, Vfs::for_domain(config))
}
