//! The virtio-mmio transport of the block device: its 32-bit registers and the
//! driver's side of the initialization protocol (virtio 1.x, sections 3.1 and 4.2.2).
//!
//! Pure bookkeeping: no guest memory is touched here. A write that needs more (a queue
//! made ready, a notify, a reset) returns an [`Effect`] the device carries out.

use virtio_seep::abi::blk::{
    reg, DEVICE_FEATURES, DEVICE_ID_BLOCK, F_VERSION_1, MAGIC, QUEUE_NUM_MAX, STATUS_ACKNOWLEDGE,
    STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED, STATUS_FEATURES_OK, VENDOR_ID, VERSION,
};

use crate::devices::DeviceFault;

/// Every status bit a driver may set.
const KNOWN_STATUS: u32 =
    STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK | STATUS_FEATURES_OK | STATUS_FAILED;

/// What the driver wrote for queue 0 (checked when it becomes ready).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct QueueConfig {
    /// `QUEUE_NUM`.
    pub(super) size: u32,
    /// Descriptor table address.
    pub(super) desc: u64,
    /// Avail ring address.
    pub(super) driver: u64,
    /// Used ring address.
    pub(super) device: u64,
}

/// The register file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Registers {
    status: u32,
    device_features_sel: u32,
    driver_features_sel: u32,
    driver_features: u64,
    /// The driver wrote a feature word past the second one with a bit set.
    unknown_features: bool,
    queue_sel: u32,
    queue: QueueConfig,
    queue_ready: bool,
}

/// What a register write asks of the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing beyond the register.
    None,
    /// `STATUS` = 0: forget the queue and the negotiation.
    Reset,
    /// `QUEUE_READY` = 1: check this configuration and start using the queue.
    QueueReady(QueueConfig),
    /// `QUEUE_READY` = 0: stop using the queue.
    QueueDisabled,
    /// `QUEUE_NOTIFY` of queue 0: process the available chains now.
    Notify,
}

impl Registers {
    /// The value of the 32-bit register at `offset`.
    pub(super) fn read(&self, offset: u64) -> Result<u32, DeviceFault> {
        let queue0 = self.queue_sel == 0;
        Ok(match offset {
            reg::MAGIC_VALUE => MAGIC,
            reg::VERSION => VERSION,
            reg::DEVICE_ID => DEVICE_ID_BLOCK,
            reg::VENDOR_ID => VENDOR_ID,
            reg::DEVICE_FEATURES => feature_word(DEVICE_FEATURES, self.device_features_sel),
            reg::QUEUE_NUM_MAX => u32::from(if queue0 { QUEUE_NUM_MAX } else { 0 }),
            reg::QUEUE_READY => u32::from(queue0 && self.queue_ready),
            reg::INTERRUPT_STATUS | reg::CONFIG_GENERATION => 0,
            reg::STATUS => self.status,
            _ => return Err(bad_access(offset, false)),
        })
    }

    /// Writes `value` to the 32-bit register at `offset`.
    pub(super) fn write(&mut self, offset: u64, value: u32) -> Result<Effect, DeviceFault> {
        match offset {
            reg::DEVICE_FEATURES_SEL => self.device_features_sel = value,
            reg::DRIVER_FEATURES_SEL => self.driver_features_sel = value,
            reg::QUEUE_SEL => self.queue_sel = value,
            reg::INTERRUPT_ACK => {}
            reg::DRIVER_FEATURES => self.write_features(value)?,
            reg::STATUS => return self.write_status(value),
            reg::QUEUE_READY => return self.write_queue_ready(value),
            reg::QUEUE_NOTIFY => return self.notify(value),
            reg::QUEUE_NUM
            | reg::QUEUE_DESC_LOW
            | reg::QUEUE_DESC_HIGH
            | reg::QUEUE_DRIVER_LOW
            | reg::QUEUE_DRIVER_HIGH
            | reg::QUEUE_DEVICE_LOW
            | reg::QUEUE_DEVICE_HIGH => self.write_queue(offset, value)?,
            _ => return Err(bad_access(offset, true)),
        }
        Ok(Effect::None)
    }

    /// The queue became unusable (the device refused its configuration).
    pub(super) fn clear_queue_ready(&mut self) {
        self.queue_ready = false;
    }

    fn write_features(&mut self, value: u32) -> Result<(), DeviceFault> {
        if self.status & STATUS_DRIVER == 0 || self.status & STATUS_FEATURES_OK != 0 {
            return Err(DeviceFault::Protocol(
                "features written outside feature negotiation",
            ));
        }
        match self.driver_features_sel {
            0 => self.driver_features = (self.driver_features & !0xffff_ffff) | u64::from(value),
            1 => {
                self.driver_features =
                    (self.driver_features & 0xffff_ffff) | (u64::from(value) << 32)
            }
            _ => self.unknown_features |= value != 0,
        }
        Ok(())
    }

    fn write_status(&mut self, value: u32) -> Result<Effect, DeviceFault> {
        if value == 0 {
            *self = Registers::default();
            return Ok(Effect::Reset);
        }
        if value & !KNOWN_STATUS != 0 {
            return Err(DeviceFault::Protocol("unknown device status bits"));
        }
        if self.status & !value != 0 {
            return Err(DeviceFault::Protocol(
                "device status bits cleared without a reset",
            ));
        }
        let added = value & !self.status;
        let mut status = value;
        if added & STATUS_FEATURES_OK != 0 {
            if value & STATUS_DRIVER == 0 {
                return Err(DeviceFault::Protocol("FEATURES_OK before DRIVER"));
            }
            let acceptable = self.driver_features & !DEVICE_FEATURES == 0
                && self.driver_features & (1 << F_VERSION_1) != 0
                && !self.unknown_features;
            if !acceptable {
                // The device refuses the features: the driver reads FEATURES_OK back
                // clear (virtio 1.x, 3.1.1) and must give up.
                status &= !STATUS_FEATURES_OK;
            }
        }
        if added & STATUS_DRIVER_OK != 0 && status & STATUS_FEATURES_OK == 0 {
            return Err(DeviceFault::Protocol("DRIVER_OK before FEATURES_OK"));
        }
        self.status = status;
        Ok(Effect::None)
    }

    fn write_queue(&mut self, offset: u64, value: u32) -> Result<(), DeviceFault> {
        self.queue0_writable()?;
        let queue = &mut self.queue;
        let low = |old: u64| (old & !0xffff_ffff) | u64::from(value);
        let high = |old: u64| (old & 0xffff_ffff) | (u64::from(value) << 32);
        match offset {
            reg::QUEUE_NUM => queue.size = value,
            reg::QUEUE_DESC_LOW => queue.desc = low(queue.desc),
            reg::QUEUE_DESC_HIGH => queue.desc = high(queue.desc),
            reg::QUEUE_DRIVER_LOW => queue.driver = low(queue.driver),
            reg::QUEUE_DRIVER_HIGH => queue.driver = high(queue.driver),
            reg::QUEUE_DEVICE_LOW => queue.device = low(queue.device),
            _ => queue.device = high(queue.device),
        }
        Ok(())
    }

    fn write_queue_ready(&mut self, value: u32) -> Result<Effect, DeviceFault> {
        match value {
            0 => {
                self.queue_ready = false;
                Ok(Effect::QueueDisabled)
            }
            1 => {
                self.queue0_writable()?;
                if self.status & STATUS_FEATURES_OK == 0 {
                    return Err(DeviceFault::Protocol("queue set up before FEATURES_OK"));
                }
                self.queue_ready = true;
                Ok(Effect::QueueReady(self.queue))
            }
            _ => Err(DeviceFault::Protocol("QUEUE_READY takes 0 or 1")),
        }
    }

    fn notify(&self, queue: u32) -> Result<Effect, DeviceFault> {
        if queue != 0 {
            return Err(DeviceFault::Protocol(
                "notify of a queue that does not exist",
            ));
        }
        if self.status & STATUS_DRIVER_OK == 0 {
            return Err(DeviceFault::Protocol("notify before DRIVER_OK"));
        }
        if !self.queue_ready {
            return Err(DeviceFault::Protocol("notify of a queue that is not ready"));
        }
        Ok(Effect::Notify)
    }

    /// Queue registers may be written for queue 0 while it is not ready.
    fn queue0_writable(&self) -> Result<(), DeviceFault> {
        if self.queue_sel != 0 {
            return Err(DeviceFault::Protocol("only queue 0 exists"));
        }
        if self.queue_ready {
            return Err(DeviceFault::Protocol("queue changed while it is ready"));
        }
        Ok(())
    }
}

/// Word `sel` (32 bits) of a 64-bit feature set; 0 past the second word.
fn feature_word(features: u64, sel: u32) -> u32 {
    let word = match sel {
        0 => features,
        1 => features >> 32,
        _ => 0,
    };
    u32::try_from(word & 0xffff_ffff).expect("masked to 32 bits")
}

fn bad_access(offset: u64, write: bool) -> DeviceFault {
    DeviceFault::BadRegisterAccess {
        offset,
        len: 4,
        write,
    }
}
