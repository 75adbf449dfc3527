//! One virtio-blk request: parsed and validated from its descriptors, then carried out
//! against the disk image.
//!
//! The device accepts the conventional layout: one device-readable 16-byte
//! `RequestHeader`, the data segments, one device-writable status descriptor. Parsing
//! checks everything before anything happens, so a malformed request never reaches the
//! disk; only the host's own I/O failures come back to the guest, as `S_IOERR`.

use virtio_queue::desc::split::Descriptor;
use virtio_seep::abi::blk::{
    RequestHeader, DEVICE_ID_STRING, ID_BYTES, SECTOR_SIZE, SIZE_MAX, S_IOERR, S_OK, S_UNSUPP,
    T_FLUSH, T_GET_ID, T_IN, T_OUT,
};
use vm_memory::{Bytes, GuestAddress, GuestMemoryBackend};
use zerocopy::FromBytes;

use super::backend::DiskFile;
use crate::devices::DeviceFault;
use crate::memory::DomainMemory;
use crate::virtq::guest_range;

/// Bytes of the request header descriptor.
const HEADER_LEN: u32 = 16;

/// What a request asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operation {
    /// Read the disk at this byte offset into the segments.
    Read {
        /// Byte offset on the disk.
        offset: u64,
    },
    /// Write the segments to the disk at this byte offset.
    Write {
        /// Byte offset on the disk.
        offset: u64,
    },
    /// Make completed writes durable.
    Flush,
    /// Write the device id into the segments.
    GetId,
    /// A request type the device does not know (answered `S_UNSUPP`).
    Unsupported,
}

/// One data segment: a guest buffer already checked to lie in RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Segment {
    addr: GuestAddress,
    len: u32,
}

/// A validated request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) operation: Operation,
    segments: Vec<Segment>,
    status: GuestAddress,
}

/// What carrying out a request did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Done {
    /// Bytes written into device-writable buffers (the used ring's `len`).
    pub(super) written: u32,
    /// Bytes moved to or from the disk.
    pub(super) bytes: u64,
}

impl Request {
    /// Parses and validates the request made of `descriptors` (a walked chain) on a
    /// disk of `capacity` sectors.
    pub(super) fn parse(
        memory: &DomainMemory,
        descriptors: &[Descriptor],
        capacity: u64,
    ) -> Result<Request, DeviceFault> {
        let bad = |what: String| Err(DeviceFault::BadDescriptor(what));
        let [header, data @ .., status] = descriptors else {
            return bad(format!(
                "a request needs a header and a status descriptor, the chain has {}",
                descriptors.len()
            ));
        };
        if header.is_write_only() || header.len() != HEADER_LEN {
            return bad(format!(
                "header descriptor must be device-readable and {HEADER_LEN} bytes, \
                 it is {} bytes{}",
                header.len(),
                if header.is_write_only() {
                    ", device-writable"
                } else {
                    ""
                }
            ));
        }
        check(memory, header, "header")?;
        if !status.is_write_only() || status.len() == 0 {
            return bad("status descriptor must be device-writable, at least 1 byte".into());
        }
        check(memory, status, "status")?;
        let mut segments = Vec::with_capacity(data.len());
        for segment in data {
            if segment.len() == 0 {
                return bad("empty data segment".into());
            }
            if segment.len() > SIZE_MAX {
                return Err(DeviceFault::SegmentTooLong {
                    len: segment.len(),
                    max: SIZE_MAX,
                });
            }
            check(memory, segment, "data segment")?;
            segments.push(Segment {
                addr: segment.addr(),
                len: segment.len(),
            });
        }
        let mut bytes = [0u8; HEADER_LEN as usize];
        memory
            .guest()
            .read_slice(&mut bytes, header.addr())
            .map_err(|e| DeviceFault::BadDescriptor(format!("header: {e}")))?;
        let header = RequestHeader::read_from_bytes(&bytes).expect("exactly a header");
        let operation = match header.kind {
            T_IN | T_OUT => {
                let device_writes = header.kind == T_IN;
                if data.iter().any(|d| d.is_write_only() != device_writes) {
                    return bad(format!(
                        "a {} request needs device-{} data segments",
                        if device_writes { "read" } else { "write" },
                        if device_writes {
                            "writable"
                        } else {
                            "readable"
                        }
                    ));
                }
                let offset = sectors(&segments, header.sector, capacity)?;
                match device_writes {
                    true => Operation::Read { offset },
                    false => Operation::Write { offset },
                }
            }
            T_FLUSH if data.is_empty() => Operation::Flush,
            T_FLUSH => return bad("a flush request carries no data".into()),
            T_GET_ID if !data.is_empty() && data.iter().all(Descriptor::is_write_only) => {
                Operation::GetId
            }
            T_GET_ID => return bad("a get-id request needs device-writable data".into()),
            _ => Operation::Unsupported,
        };
        Ok(Request {
            operation,
            segments,
            status: status.addr(),
        })
    }

    /// Carries the request out and writes its status byte. A host I/O failure is the
    /// status `S_IOERR`; nothing here can fault the domain (parsing checked it all).
    pub(super) fn execute(&self, memory: &DomainMemory, disk: &DiskFile) -> Done {
        let mem = memory.guest();
        let mut done = Done::default();
        let status = match self.operation {
            Operation::Read { offset } | Operation::Write { offset } => {
                let read = matches!(self.operation, Operation::Read { .. });
                let mut at = offset;
                let mut result = Ok(());
                for segment in &self.segments {
                    let len = segment.len as usize;
                    let Ok(slice) = mem.get_slice(segment.addr, len) else {
                        result = Err(());
                        break;
                    };
                    let moved = match read {
                        true => disk.read_into(at, &slice),
                        false => disk.write_from(at, &slice),
                    };
                    if moved.is_err() {
                        result = Err(());
                        break;
                    }
                    at += u64::from(segment.len);
                    done.bytes += u64::from(segment.len);
                }
                if read {
                    done.written = self.data_len();
                }
                if result.is_ok() {
                    S_OK
                } else {
                    S_IOERR
                }
            }
            Operation::Flush => match disk.flush() {
                Ok(()) => S_OK,
                Err(_) => S_IOERR,
            },
            Operation::GetId => {
                let mut id = [0u8; ID_BYTES];
                id[..DEVICE_ID_STRING.len()].copy_from_slice(DEVICE_ID_STRING);
                let mut rest = &id[..];
                for segment in &self.segments {
                    let len = rest.len().min(segment.len as usize);
                    // The range was checked by `parse`.
                    let _ = mem.write_slice(&rest[..len], segment.addr);
                    rest = &rest[len..];
                    done.written += u32::try_from(len).expect("at most ID_BYTES");
                }
                S_OK
            }
            Operation::Unsupported => S_UNSUPP,
        };
        // The status descriptor was checked by `parse`: this write cannot fail.
        let _ = mem.write_obj(status, self.status);
        done.written = done.written.saturating_add(1);
        done
    }

    /// Total bytes of the data segments (at most `SEG_MAX * SIZE_MAX`, 16 MiB).
    fn data_len(&self) -> u32 {
        let len: u64 = self.segments.iter().map(|s| u64::from(s.len)).sum();
        u32::try_from(len).unwrap_or(u32::MAX)
    }
}

/// Checks a data descriptor's range, naming it.
fn check(memory: &DomainMemory, descriptor: &Descriptor, what: &str) -> Result<(), DeviceFault> {
    guest_range(
        memory,
        descriptor.addr().0,
        u64::from(descriptor.len()),
        u64::MAX,
    )
    .map_err(|e| DeviceFault::BadDescriptor(format!("{what}: {e}")))
}

/// The byte offset of a read or write of `segments` at `sector`: the data must be
/// whole sectors (at least one) that all lie on the disk.
fn sectors(segments: &[Segment], sector: u64, capacity: u64) -> Result<u64, DeviceFault> {
    let len: u64 = segments.iter().map(|s| u64::from(s.len)).sum();
    if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
        return Err(DeviceFault::UnalignedLength { len });
    }
    let count = len / SECTOR_SIZE;
    match sector.checked_add(count) {
        Some(end) if end <= capacity => Ok(sector * SECTOR_SIZE),
        _ => Err(DeviceFault::SectorOutOfRange {
            sector,
            count,
            capacity,
        }),
    }
}
