//! How the driver reaches the device's registers: 32-bit MMIO loads and stores in the
//! device window in a guest ([`Mmio`]), a fake device in host tests.

use core::arch::asm;

/// The device's virtio-mmio register block, as the driver sees it.
///
/// # Safety
///
/// An implementation must behave like the VMM's device: it touches the queue memory
/// and the buffers posted on it only inside [`Transport::write`] (a `QUEUE_NOTIFY`),
/// writes only the used ring and buffers posted device-writable, and has completed
/// every chain it consumed when `write` returns. The driver relies on it for memory
/// safety (it hands out buffers the device writes, and reuses them after the notify).
pub unsafe trait Transport {
    /// Reads the 32-bit register (or config-space word) at `offset`.
    fn read(&mut self, offset: u64) -> u32;

    /// Writes `value` to the 32-bit register at `offset`.
    ///
    /// # Safety
    ///
    /// For a `QUEUE_NOTIFY`: every chain offered must name memory the device may read
    /// (device-readable descriptors) or write (device-writable ones), and nothing may
    /// read or write the latter while the call runs.
    unsafe fn write(&mut self, offset: u64, value: u32);
}

/// The real transport: the device window of this domain.
#[derive(Debug)]
pub struct Mmio {
    base: u64,
}

impl Mmio {
    /// The registers at guest address `base`.
    ///
    /// # Safety
    ///
    /// `base .. base + BLK_MMIO_SIZE` must be the virtio-mmio window of a device that
    /// behaves as [`Transport`] requires (the VMM's block device, mapped in this domain
    /// because its system description gives it `disk = true`), and only one `Mmio` may
    /// drive it.
    pub const unsafe fn new(base: u64) -> Mmio {
        Mmio { base }
    }
}

// SAFETY: the VMM's block device processes a notify synchronously inside the MMIO exit
// of the store and writes only the used ring and device-writable buffers (its
// contract, `virtio_seep::abi::blk`), as `new`'s caller guaranteed.
unsafe impl Transport for Mmio {
    fn read(&mut self, offset: u64) -> u32 {
        let value: u32;
        // SAFETY: the address is a register of the device window (`new`'s contract):
        // the load is one 32-bit MMIO access the VMM serves; no RAM is read. Without
        // `nomem` the compiler keeps memory accesses on either side of it in order.
        unsafe {
            asm!(
                "mov {value:e}, dword ptr [{addr}]",
                addr = in(reg) self.base + offset,
                value = out(reg) value,
                options(nostack, preserves_flags),
            );
        }
        value
    }

    unsafe fn write(&mut self, offset: u64, value: u32) {
        // SAFETY: as in `read`, a single 32-bit store to a register. A notify makes the
        // device read and write guest memory before the store retires; the asm block
        // may read and write memory as far as the compiler knows, so every descriptor
        // and buffer write is done before it and no read of a device-written buffer is
        // moved before it (the caller's contract covers the buffers themselves).
        unsafe {
            asm!(
                "mov dword ptr [{addr}], {value:e}",
                addr = in(reg) self.base + offset,
                value = in(reg) value,
                options(nostack, preserves_flags),
            );
        }
    }
}
