//! Inter-domain messages: the VMM side of virtio-seep.
//!
//! - [`queues`]: a domain's TX/RX virtqueue pair, driven as the device through the
//!   validated walker of [`crate::virtq`]: every chain a guest posts is validated here, and messages are
//!   written into the buffers it posted for them;
//! - [`router`]: who may send what to whom, request ids, waiting and waking, deadlock
//!   detection, storms; pure bookkeeping with no guest memory, unit-tested on the host;
//! - [`message`]: a message in flight between two queues;
//! - [`fault`]: the ways a domain can misuse IPC, each a fault of that domain only.

pub mod fault;
pub mod message;
pub mod queues;
pub mod router;

pub use fault::IpcFault;
pub use message::Message;
