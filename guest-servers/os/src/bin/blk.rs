//! The block driver's image: the virtio-blk device in this domain's device window
//! (the system description gives the domain `disk = true`), served as
//! `ankh_blk::BlkServer` by `ankh_serve`. It prints `blk: <sectors> sectors` once the
//! device is set up, or `blk: <why>` and exits with 1 when it cannot be.
#![no_std]
#![no_main]

use ankh_blk::ring::StaticQueue;
use ankh_blk::transport::Mmio;
use ankh_blk::{BlkDriver, BlkServer};
use ankh_guest_rt::console::Line;
use ankh_guest_rt::BootInfo;
use virtio_seep::abi::blk::BLK_MMIO_BASE;

ankh_guest_rt::entry!(main);

/// The request queue, in `.bss`.
static QUEUE: StaticQueue = StaticQueue::new();

fn main(boot: &BootInfo) -> u32 {
    // SAFETY: the VMM maps its block device's registers at BLK_MMIO_BASE in a domain
    // with a disk, and this is the only driver of it. (In a domain without one, the
    // first register read is a page fault, which the VMM reports.)
    let transport = unsafe { Mmio::new(BLK_MMIO_BASE) };
    let Some(memory) = QUEUE.take() else {
        return 1;
    };
    let driver = match BlkDriver::init(transport, memory) {
        Ok(driver) => driver,
        Err(error) => {
            Line::new().str("blk: ").str(error.text()).send();
            return 1;
        }
    };
    Line::new()
        .str("blk: ")
        .dec(driver.geometry().sectors)
        .str(" sectors")
        .send();
    ankh_serve::run(boot, BlkServer::new(driver))
}
