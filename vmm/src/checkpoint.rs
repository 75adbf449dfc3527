//! Checkpoints of a domain: its memory and vCPU at a request boundary, and rollback to
//! them.
//!
//! The store keeps a *shadow* of the domain's RAM as it was at the last checkpoint.
//! Taking a checkpoint copies into the shadow only the pages written since the
//! previous one: the guest's writes (KVM's dirty log) and the VMM's own (the dirty
//! bitmap of [`crate::memory`]: message delivery, used rings; KVM does not log those).
//! Rolling back copies the pages written since the checkpoint back from the shadow, so
//! the domain's memory is byte-identical to the checkpoint, and restores the vCPU. The
//! shadow is allocated lazily by the host, so it costs only the pages ever written.

use kvm_bindings::{kvm_fpu, kvm_regs, kvm_sregs};
use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::memory::DomainMemory;
use virtio_seep::abi::layout::PAGE_SIZE;

/// The vCPU state a checkpoint keeps.
#[derive(Clone, Debug)]
pub struct VcpuState {
    /// General registers.
    pub regs: kvm_regs,
    /// Segment, control and descriptor-table registers.
    pub sregs: kvm_sregs,
    /// x87 state (guests use no SSE, but may use x87).
    pub fpu: kvm_fpu,
}

/// The shadow memory and vCPU state of the last checkpoint.
pub struct CheckpointStore {
    shadow: Vec<u8>,
    vcpu: Option<VcpuState>,
}

impl CheckpointStore {
    /// A store for a domain with `memory_size` bytes of RAM (all zero, like fresh RAM).
    pub fn new(memory_size: u64) -> CheckpointStore {
        let len = usize::try_from(memory_size).expect("RAM fits in usize");
        CheckpointStore {
            // Zeroed and lazily backed by the host: untouched pages cost nothing.
            shadow: vec![0; len],
            vcpu: None,
        }
    }

    /// Whether a checkpoint was taken.
    pub fn has_checkpoint(&self) -> bool {
        self.vcpu.is_some()
    }

    /// The vCPU state of the last checkpoint.
    pub fn vcpu(&self) -> Option<&VcpuState> {
        self.vcpu.as_ref()
    }

    /// Keeps the vCPU state of a checkpoint: the general registers `regs`, and the
    /// segment and x87 state `first` when given (the first checkpoint; later ones keep
    /// what it saved, which a serving guest does not change). Without `first` and
    /// without an earlier checkpoint, nothing is kept.
    pub fn keep_vcpu(&mut self, regs: kvm_regs, first: Option<(kvm_sregs, kvm_fpu)>) {
        match (first, &mut self.vcpu) {
            (Some((sregs, fpu)), _) => self.vcpu = Some(VcpuState { regs, sregs, fpu }),
            (None, Some(vcpu)) => vcpu.regs = regs,
            (None, None) => {}
        }
    }

    /// Records a checkpoint's memory: copies the pages in `written` (bitmap, KVM
    /// layout) from `memory` into the shadow. Returns the pages copied; `written` is
    /// left all zero, ready for the next look.
    pub fn capture(&mut self, memory: &DomainMemory, written: &mut [u64]) -> usize {
        let mut copied = 0;
        for page in take_pages(written) {
            let at = page * PAGE_SIZE;
            let range = slot(at);
            // One page at a time through a volatile slice: cheaper than `read_slice`,
            // which looks the region up again for every call.
            if let Ok(page) = memory.guest().get_slice(GuestAddress(at), range.len()) {
                page.copy_to(&mut self.shadow[range]);
                copied += 1;
            }
        }
        copied
    }

    /// Puts back into `memory` the pages in `written` (bitmap, KVM layout) as they were
    /// at the checkpoint. Returns the pages restored; `written` is left all zero.
    pub fn restore(&self, memory: &DomainMemory, written: &mut [u64]) -> usize {
        let mut restored = 0;
        for page in take_pages(written) {
            let at = page * PAGE_SIZE;
            let range = slot(at);
            if let Ok(page) = memory.guest().get_slice(GuestAddress(at), range.len()) {
                page.copy_from(&self.shadow[range]);
                restored += 1;
            }
        }
        restored
    }
}

/// The shadow range of the page at guest address `at`.
fn slot(at: u64) -> std::ops::Range<usize> {
    let start = usize::try_from(at).expect("RAM fits in usize");
    start..start + usize::try_from(PAGE_SIZE).expect("4096")
}

/// The page numbers whose bits are set in a dirty bitmap.
pub fn pages(bitmap: &[u64]) -> impl Iterator<Item = u64> + '_ {
    // Word by word, bit by set bit: a 64 MiB domain's bitmap has 16384 bits, of which
    // a request sets a few dozen.
    bitmap
        .iter()
        .enumerate()
        .filter(|(_, bits)| **bits != 0)
        .flat_map(|(word, &bits)| set_bits(word, bits))
}

/// Like [`pages`], clearing each word of `bitmap` as it is read: the caller's bitmap
/// is zero afterwards without a pass over all of it.
pub fn take_pages(bitmap: &mut [u64]) -> impl Iterator<Item = u64> + '_ {
    bitmap
        .iter_mut()
        .enumerate()
        .filter(|(_, bits)| **bits != 0)
        .flat_map(|(word, bits)| set_bits(word, std::mem::take(bits)))
}

/// The page numbers of the set bits of word `word` of a bitmap, `bits`.
fn set_bits(word: usize, mut bits: u64) -> impl Iterator<Item = u64> {
    std::iter::from_fn(move || {
        (bits != 0).then(|| {
            let bit = u64::from(bits.trailing_zeros());
            bits &= bits - 1;
            word as u64 * 64 + bit
        })
    })
}

#[cfg(test)]
mod tests {
    use vm_memory::Bytes;

    use super::*;

    #[test]
    fn pages_are_every_set_bit_in_order() {
        let bitmap = [1 << 63 | 1, 0, 0b1010, u64::MAX];
        let found: Vec<u64> = pages(&bitmap).collect();
        let mut expected = vec![0, 63, 129, 131];
        expected.extend(192..256);
        assert_eq!(found, expected);
        assert_eq!(pages(&[0; 4]).count(), 0);
    }

    #[test]
    fn bitmap_pages() {
        assert_eq!(pages(&[0b101, 1 << 63]).collect::<Vec<_>>(), [0, 2, 127]);
    }

    #[test]
    fn restore_puts_back_exactly_the_captured_pages() {
        let memory = DomainMemory::new(4 << 20).unwrap();
        let mut store = CheckpointStore::new(memory.size());
        memory
            .guest()
            .write_slice(b"before", GuestAddress(0x20_0000))
            .unwrap();
        let mut written = memory.take_vmm_written();
        let first = Some((kvm_sregs::default(), kvm_fpu::default()));
        store.keep_vcpu(kvm_regs::default(), first);
        assert!(store.has_checkpoint());
        assert!(store.capture(&memory, &mut written) >= 1);
        assert!(written.iter().all(|&word| word == 0), "taken out");
        memory
            .guest()
            .write_slice(b"after!", GuestAddress(0x20_0000))
            .unwrap();
        memory
            .guest()
            .write_slice(b"new", GuestAddress(0x30_0000))
            .unwrap();
        let mut written = memory.take_vmm_written();
        assert_eq!(store.restore(&memory, &mut written), 2);
        assert!(written.iter().all(|&word| word == 0), "taken out");
        let mut back = [0u8; 6];
        memory
            .guest()
            .read_slice(&mut back, GuestAddress(0x20_0000))
            .unwrap();
        assert_eq!(&back, b"before");
        memory
            .guest()
            .read_slice(&mut back[..3], GuestAddress(0x30_0000))
            .unwrap();
        assert_eq!(
            &back[..3],
            b"\0\0\0",
            "a page first written after the checkpoint is zero again"
        );
    }
}
