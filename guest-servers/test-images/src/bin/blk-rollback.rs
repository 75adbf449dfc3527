//! Checks that a rollback puts the block device back with the memory: sets the device
//! up, makes a `Nop` hypercall (the host checkpoints there), writes
//! `BLK_ROLLBACK_BYTE` over sector 0, makes a second `Nop` (the host rolls back to the
//! first, so the write runs again), then reads sector 0 back. Returns 0 when every
//! request completed and the data is right, 1 otherwise. Needs a disk.
#![no_std]
#![no_main]

use ankh_blk::ring::StaticQueue;
use ankh_blk::transport::Mmio;
use ankh_blk::BlkDriver;
use ankh_guest_rt::{hypercall, BootInfo};
use ankh_test_images::expect::BLK_ROLLBACK_BYTE;
use virtio_seep::abi::blk::BLK_MMIO_BASE;

ankh_guest_rt::entry!(main);

static QUEUE: StaticQueue = StaticQueue::new();

fn main(_boot: &BootInfo) -> u32 {
    // SAFETY: the domain has a disk, so the VMM's block device is at BLK_MMIO_BASE,
    // and this is its only driver.
    let transport = unsafe { Mmio::new(BLK_MMIO_BASE) };
    let Some(memory) = QUEUE.take() else {
        return 1;
    };
    let Ok(mut driver) = BlkDriver::init(transport, memory) else {
        return 1;
    };
    hypercall::nop();
    let data = [BLK_ROLLBACK_BYTE; 512];
    if driver.write(0, &data).is_err() {
        return 1;
    }
    hypercall::nop();
    let mut back = [0u8; 512];
    if driver.read(0, &mut back).is_err() || back != data {
        return 1;
    }
    0
}
