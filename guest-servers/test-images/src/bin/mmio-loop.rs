//! MMIO exit cost benchmark: reads the block device's magic register `MMIO_LOOP_COUNT`
//! times (one MMIO exit each), then exits 0 (1 on a wrong value). Needs a disk.
#![no_std]
#![no_main]

use ankh_blk::transport::{Mmio, Transport};
use ankh_guest_rt::BootInfo;
use ankh_test_images::expect::MMIO_LOOP_COUNT;
use virtio_seep::abi::blk::{reg, BLK_MMIO_BASE, MAGIC};

ankh_guest_rt::entry!(main);

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: the domain has a disk, so the VMM's block device is at BLK_MMIO_BASE;
    // only the magic register is read, which changes nothing.
    let mut device = unsafe { Mmio::new(BLK_MMIO_BASE) };
    for _ in 0..MMIO_LOOP_COUNT {
        if device.read(reg::MAGIC_VALUE) != MAGIC {
            return 1;
        }
    }
    0
}
