//! Checkpoints of a domain: its memory and vCPU at a request boundary, and rollback to
//! them.
//!
//! The store keeps a *shadow* of the domain's RAM as it was at the last checkpoint.
//! Taking a checkpoint copies into the shadow only the pages written since the
//! previous one: the guest's writes (KVM's dirty log) and the VMM's own (the dirty
//! bitmap of [`crate::memory`]: message delivery, used rings; KVM does not log those).
//! Rolling back copies the pages written since the checkpoint back from the shadow, so
//! the domain's memory is byte-identical to the checkpoint, and restores the vCPU. The
//! shadow is allocated lazily by the host, so it costs only the pages ever written,
//! and is left out of `fork` (see `shadow`).
//!
//! A checkpoint or rollback that fails part way *poisons* the store ([`StoreState`]):
//! a rollback is refused until a checkpoint succeeds completely, so it never restores
//! a mix of two states.

use kvm_bindings::{
    kvm_debugregs, kvm_fpu, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave, Msrs,
};
use std::sync::Arc;

use vm_memory::{GuestAddress, GuestMemoryBackend};

use crate::memory::DomainMemory;
use virtio_seep::abi::layout::PAGE_SIZE;

mod shadow;
use shadow::ShadowMemory;

/// The vCPU state a checkpoint keeps: everything a guest can change (what each piece
/// costs, and why nothing else can change, is in `domain::vcpu_state`).
pub struct VcpuState {
    /// General registers.
    pub regs: kvm_regs,
    /// Segment, control and descriptor-table registers, EFER, CR8, the APIC base.
    pub sregs: kvm_sregs,
    /// Pending exception and interrupt, NMI, interrupt shadow, SMM.
    pub events: kvm_vcpu_events,
    /// x87 (and whatever SSE/AVX state the guest could reach); shared with the
    /// checkpoints that carry it over (see `domain::vcpu_state`, "lazily").
    pub fpu: Arc<FpuState>,
    /// The state only code at CPL0 can change (shared between the checkpoints that
    /// carry it over: no copy of a few hundred MSRs per checkpoint).
    pub privileged: Arc<PrivilegedState>,
    /// Code at CPL0 other than the image's exception stubs as loaded may have run (a
    /// kernel-mode guest, or a user-mode guest that wrote its own code pages): the
    /// privileged state is then read at every checkpoint.
    pub tainted: bool,
}

/// The CPU state of a checkpoint, per substrate.
// The store holds one at a time; boxing the larger variant would cost an allocation at
// every checkpoint of a VM, on the request path.
#[allow(clippy::large_enum_variant)]
pub enum CpuState {
    /// A VM's vCPU.
    Vm(VcpuState),
    /// A process domain's registers at the boundary (its x87/SSE state is saved by
    /// the domain itself when it resumes, and kept by `domain::process`).
    Process {
        /// General registers.
        regs: virtio_seep::abi::process::Regs,
    },
}

impl CpuState {
    /// A VM's vCPU state (`None` for a process domain's).
    pub fn vm(&self) -> Option<&VcpuState> {
        match self {
            CpuState::Vm(vcpu) => Some(vcpu),
            CpuState::Process { .. } => None,
        }
    }
}

/// The floating-point state of a vCPU.
#[derive(Debug)]
pub enum FpuState {
    /// `KVM_GET_XSAVE`: every state component, with the XSAVE header that says which
    /// are in their initial configuration (so a restore is exact).
    Xsave(Box<kvm_xsave>),
    /// `KVM_GET_FPU`, where KVM has no XSAVE (or the guest's XSAVE area is larger than
    /// `kvm_xsave`): x87 and SSE registers (boxed too: a checkpoint moves it).
    Legacy(Box<kvm_fpu>),
}

/// The state that only code at CPL0 can change.
pub struct PrivilegedState {
    /// DR0-DR3, DR6, DR7 (DR6 and DR7 also change when a #DB is delivered).
    pub debugregs: kvm_debugregs,
    /// XCR0, where KVM has XCRs.
    pub xcrs: Option<kvm_xcrs>,
    /// The model-specific registers KVM saves, but the time stamp counter's (at most
    /// `KVM_MAX_MSR_ENTRIES` per element).
    pub msrs: Vec<Msrs>,
}

/// Why a domain's checkpoint cannot be used (see [`StoreState::Poisoned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poison {
    /// A checkpoint failed part way: the shadow may hold pages of two request
    /// boundaries, and the vCPU state may not match either.
    Checkpoint,
    /// A rollback failed part way: the domain's memory and vCPU mix the checkpoint and
    /// the state it faulted in.
    Rollback,
}

impl std::fmt::Display for Poison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Poison::Checkpoint => "checkpoint",
            Poison::Rollback => "rollback",
        })
    }
}

/// Whether the store holds a checkpoint a rollback may use.
///
/// Transitions (the domain makes them, see `Domain::checkpoint` and
/// `Domain::rollback`):
/// - `Empty` → `Ready`: the first checkpoint succeeds;
/// - any → `Poisoned(Checkpoint)`: a checkpoint fails, whatever step (an ioctl, a
///   page copy);
/// - `Poisoned` → `Ready`: a later checkpoint succeeds completely (every page written
///   since the last good one is copied: a failed copy leaves its page pending);
/// - `Ready` → `Poisoned(Rollback)`: a rollback fails part way;
/// - a rollback from `Empty` or `Poisoned` is refused and changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreState {
    /// No checkpoint yet.
    Empty,
    /// The shadow and the vCPU state are one complete checkpoint.
    Ready,
    /// The last checkpoint or rollback failed; rollback is refused until a checkpoint
    /// succeeds.
    Poisoned(Poison),
}

/// A page could not be copied between the domain's RAM and the shadow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("page {page:#x} could not be copied")]
pub struct PageCopyError {
    /// The page number.
    pub page: u64,
}

/// The shadow memory and vCPU state of the last checkpoint.
pub struct CheckpointStore {
    shadow: ShadowMemory,
    vcpu: Option<CpuState>,
    state: StoreState,
    /// Test hook: the next capture fails after copying this many pages.
    fail_capture_after: Option<usize>,
}

impl CheckpointStore {
    /// A store for a domain with `memory_size` bytes of RAM (all zero, like fresh RAM).
    pub fn new(memory_size: u64) -> CheckpointStore {
        let len = usize::try_from(memory_size).expect("RAM fits in usize");
        CheckpointStore {
            // Zeroed and lazily backed by the host: untouched pages cost nothing.
            shadow: ShadowMemory::zeroed(len),
            vcpu: None,
            state: StoreState::Empty,
            fail_capture_after: None,
        }
    }

    /// Whether the store holds a checkpoint a rollback may use.
    pub fn state(&self) -> StoreState {
        self.state
    }

    /// Whether a complete checkpoint is held.
    pub fn has_checkpoint(&self) -> bool {
        self.state == StoreState::Ready
    }

    /// The vCPU state of the last checkpoint that read one (complete only when the
    /// store is `Ready`).
    pub fn vcpu(&self) -> Option<&CpuState> {
        self.vcpu.as_ref()
    }

    /// Marks the store poisoned by a failed `cause`.
    pub fn poison(&mut self, cause: Poison) {
        self.state = StoreState::Poisoned(cause);
    }

    /// Ends a checkpoint whose pages were all captured: `vcpu` is its vCPU state, and
    /// the store is `Ready`.
    pub fn complete(&mut self, vcpu: CpuState) {
        self.vcpu = Some(vcpu);
        self.state = StoreState::Ready;
    }

    /// Test hook: the next [`capture`](Self::capture) fails after `pages` copies.
    pub fn fail_next_capture_after(&mut self, pages: usize) {
        self.fail_capture_after = Some(pages);
    }

    /// Copies the pages in `written` (bitmap, KVM layout) from `memory` into the shadow.
    /// Returns the pages copied; `written` is left all zero. On a failed copy, that
    /// page and those not reached yet stay set in `written` (the next capture copies
    /// them), and the caller must poison the store.
    pub fn capture(
        &mut self,
        memory: &DomainMemory,
        written: &mut [u64],
    ) -> Result<usize, PageCopyError> {
        let mut budget = self.fail_capture_after.take();
        let shadow = &mut self.shadow;
        drain_pages(written, |page| {
            if let Some(left) = budget.as_mut() {
                if *left == 0 {
                    return false;
                }
                *left -= 1;
            }
            let at = page * PAGE_SIZE;
            let range = slot(at);
            // One page at a time through a volatile slice: cheaper than `read_slice`,
            // which looks the region up again for every call.
            match (
                memory.guest().get_slice(GuestAddress(at), range.len()),
                shadow.get_mut(range),
            ) {
                (Ok(page), Some(into)) => {
                    page.copy_to(into);
                    true
                }
                _ => false,
            }
        })
    }

    /// Puts back into `memory` the pages in `written` (bitmap, KVM layout) as they were
    /// at the checkpoint. Returns the pages restored; `written` is left all zero. On a
    /// failed copy the memory mixes two states: the caller must poison the store.
    pub fn restore(
        &self,
        memory: &DomainMemory,
        written: &mut [u64],
    ) -> Result<usize, PageCopyError> {
        drain_pages(written, |page| {
            let at = page * PAGE_SIZE;
            let range = slot(at);
            match (
                memory.guest().get_slice(GuestAddress(at), range.len()),
                self.shadow.get(range),
            ) {
                (Ok(page), Some(from)) => {
                    page.copy_from(from);
                    true
                }
                _ => false,
            }
        })
    }
}

/// Words of a bitmap [`drain_pages`] tests together for a page set in any of them.
const DRAIN_GROUP: usize = 16;

/// Takes the pages set in `bitmap` out of it one by one, in order, handing each to
/// `copy`. Returns how many it took, or the first page `copy` refused: that page and
/// the ones after it stay set.
fn drain_pages(
    bitmap: &mut [u64],
    mut copy: impl FnMut(u64) -> bool,
) -> Result<usize, PageCopyError> {
    let mut copied = 0;
    // Most of a large domain's bitmap is empty (VFS's 64 MiB: 256 words, a handful
    // set): a group of words is skipped with one test of their union, which the
    // compiler does in vector registers, and no store (about 150 ns for VFS's bitmap,
    // against 360 ns word by word).
    for (group, words) in bitmap.chunks_mut(DRAIN_GROUP).enumerate() {
        if words.iter().fold(0, |union, word| union | word) == 0 {
            continue;
        }
        for (index, slot) in words.iter_mut().enumerate() {
            if *slot == 0 {
                continue;
            }
            let word = (group * DRAIN_GROUP + index) as u64;
            let mut bits = std::mem::take(slot);
            while bits != 0 {
                let page = word * 64 + u64::from(bits.trailing_zeros());
                if !copy(page) {
                    *slot = bits;
                    return Err(PageCopyError { page });
                }
                bits &= bits - 1;
                copied += 1;
            }
        }
    }
    Ok(copied)
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
        assert!(store.capture(&memory, &mut written).unwrap() >= 1);
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
        assert_eq!(store.restore(&memory, &mut written), Ok(2));
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

    #[test]
    fn a_failed_capture_leaves_the_pages_it_did_not_copy_pending() {
        let memory = DomainMemory::new(4 << 20).unwrap();
        let mut store = CheckpointStore::new(memory.size());
        for at in [0x20_0000, 0x21_0000, 0x30_0000] {
            memory.guest().write_slice(b"x", GuestAddress(at)).unwrap();
        }
        let mut written = memory.take_vmm_written();
        store.fail_next_capture_after(1);
        let failed = store.capture(&memory, &mut written).unwrap_err();
        assert_eq!(failed.page, 0x210);
        assert_eq!(pages(&written).collect::<Vec<_>>(), [0x210, 0x300]);
        assert_eq!(
            store.capture(&memory, &mut written),
            Ok(2),
            "the hook fires once"
        );
        assert!(written.iter().all(|&word| word == 0));
    }

    #[test]
    fn draining_takes_every_page_in_order_across_groups_of_words() {
        // Words in the first group, a middle one, and the last, partial group.
        let mut bitmap = vec![0u64; 3 * DRAIN_GROUP + 3];
        let set = [
            0,
            63,
            64 * DRAIN_GROUP as u64 + 5,
            64 * bitmap.len() as u64 - 1,
        ];
        for page in set {
            bitmap[(page / 64) as usize] |= 1 << (page % 64);
        }
        let mut taken = Vec::new();
        let drained = drain_pages(&mut bitmap, |page| {
            taken.push(page);
            true
        });
        assert_eq!(drained, Ok(4));
        assert_eq!(taken, set);
        assert!(bitmap.iter().all(|&word| word == 0));

        for page in set {
            bitmap[(page / 64) as usize] |= 1 << (page % 64);
        }
        let refused = drain_pages(&mut bitmap, |page| page < set[2]);
        assert_eq!(refused, Err(PageCopyError { page: set[2] }));
        assert_eq!(pages(&bitmap).collect::<Vec<_>>(), set[2..]);
    }

    #[test]
    fn store_states_follow_the_documented_transitions() {
        let mut store = CheckpointStore::new(1 << 20);
        assert_eq!(store.state(), StoreState::Empty);
        store.poison(Poison::Checkpoint);
        assert_eq!(store.state(), StoreState::Poisoned(Poison::Checkpoint));
        assert!(!store.has_checkpoint());
    }
}
