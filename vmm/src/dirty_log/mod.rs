//! KVM's log of the pages a guest writes, read so that the pages a server writes at
//! nearly every request stay writable.
//!
//! Why: a plain `KVM_GET_DIRTY_LOG` write-protects every logged page again, and on
//! these hosts (shadow paging under `kvm_pvm`) the first write to each of them in the
//! next request traps, at about the cost of an exit. A server writes the same few pages
//! in every request (its stack, its IPC area, its heap's top), so per request it paid a
//! trap for each. Here a page, once written, stays *hot* for a while: it is not
//! write-protected again, and every look reports it as written, so a checkpoint copies
//! it (far cheaper than a trap). A page left alone long enough is protected again; if
//! it is written later it is logged once and is hot again. The pages a look reports
//! are a superset of the pages written since the last look, which is all a checkpoint
//! or a rollback needs.
//!
//! Three ways to read the log, the best KVM offers:
//! - the **dirty ring** (`KVM_CAP_DIRTY_LOG_RING`, [`ring`]): KVM appends each newly
//!   written page to a ring shared with the VMM, so a look reads memory and makes no
//!   system call (one costs about 2.3 us here); hot pages are entries not yet handed
//!   back, each for a period that adapts to how often its page is written;
//! - **manual protection** (`KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`): `KVM_GET_DIRTY_LOG`
//!   no longer protects, and pages cooled for [`ring::FIRST_HOT_LOOKS`] looks are
//!   protected with `KVM_CLEAR_DIRTY_LOG`;
//! - plain `KVM_GET_DIRTY_LOG` otherwise (every page is protected again at each look).

pub(crate) mod hot_periods;
mod ring;

use std::collections::HashMap;

use kvm_bindings::{
    kvm_clear_dirty_log, kvm_enable_cap, KVM_CAP_DIRTY_LOG_RING, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
};
use kvm_ioctls::{VcpuFd, VmFd};
use vmm_sys_util::errno;
use vmm_sys_util::ioctl::{ioctl, ioctl_with_ref};

use ring::{Ring, RING_BYTES};

/// `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE`: the flag that turns manual protection on.
const MANUAL_PROTECT_ENABLE: u64 = 1;

/// The ioctls kvm-ioctls does not wrap.
mod ioctls {
    use kvm_bindings::kvm_clear_dirty_log;
    use vmm_sys_util::{ioctl_io_nr, ioctl_iowr_nr};

    /// The KVM ioctl type.
    const KVMIO: u32 = 0xAE;
    ioctl_iowr_nr!(KVM_CLEAR_DIRTY_LOG, KVMIO, 0xc0, kvm_clear_dirty_log);
    ioctl_io_nr!(KVM_RESET_DIRTY_RINGS, KVMIO, 0xc7);
}

/// The dirty log of one VM with one vCPU: its memory slot 0, and in ring mode the
/// other logged slots a declared region splits its RAM into (`domain::declared`).
#[derive(Debug)]
pub struct DirtyLog {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Plain,
    /// Hot pages and the looks each has left.
    Manual(HashMap<u64, u32>),
    /// Waiting for its vCPU (the ring is mapped from the vCPU).
    RingPending,
    Ring(Ring),
}

impl DirtyLog {
    /// The log of `vm`, in the best mode KVM offers. Call before the memory slot and
    /// the vCPU are created, then [`attach_vcpu`](DirtyLog::attach_vcpu).
    pub fn new(vm: &VmFd) -> DirtyLog {
        let ring_max = vm.check_extension_raw(u64::from(KVM_CAP_DIRTY_LOG_RING));
        if usize::try_from(ring_max).is_ok_and(|max| max >= RING_BYTES)
            && enable(vm, KVM_CAP_DIRTY_LOG_RING, RING_BYTES as u64)
        {
            return DirtyLog {
                mode: Mode::RingPending,
            };
        }
        let offered = vm.check_extension_raw(u64::from(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
        let manual = offered & 1 != 0
            && enable(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, MANUAL_PROTECT_ENABLE);
        DirtyLog {
            mode: if manual {
                Mode::Manual(HashMap::new())
            } else {
                Mode::Plain
            },
        }
    }

    /// Maps the dirty ring of `vcpu`, in ring mode.
    pub fn attach_vcpu(&mut self, vcpu: &VcpuFd) -> Result<(), kvm_ioctls::Error> {
        if matches!(self.mode, Mode::RingPending) {
            self.mode = Mode::Ring(Ring::map(vcpu)?);
        }
        Ok(())
    }

    /// Sets in `bitmap` (one bit per page of the slot's `size` bytes, KVM's layout) the
    /// pages written since the last look, and the hot ones; pages that cooled down are
    /// protected again.
    pub fn look(
        &mut self,
        vm: &VmFd,
        size: usize,
        bitmap: &mut [u64],
    ) -> Result<(), kvm_ioctls::Error> {
        match &mut self.mode {
            Mode::Plain | Mode::RingPending => {
                or_into(bitmap, &vm.get_dirty_log(0, size)?);
                Ok(())
            }
            Mode::Manual(hot) => {
                let logged = vm.get_dirty_log(0, size)?;
                let mut cool = vec![0u64; logged.len()];
                let mut any = false;
                for page in crate::checkpoint::pages(&logged) {
                    let left = hot.entry(page).or_insert(ring::FIRST_HOT_LOOKS);
                    if *left == 0 {
                        hot.remove(&page);
                        set(&mut cool, page);
                        any = true;
                    } else {
                        *left -= 1;
                    }
                }
                if any {
                    clear(vm, &cool, size)?;
                }
                or_into(bitmap, &logged);
                Ok(())
            }
            Mode::Ring(ring) => ring.look(bitmap, &mut || reset_rings(vm)),
        }
    }

    /// Whether the log reads KVM's dirty ring: the only mode that takes a VM's memory in
    /// several slots (see [`set_slot_base`](Self::set_slot_base)).
    pub fn is_ring(&self) -> bool {
        matches!(self.mode, Mode::Ring(_))
    }

    /// Logged memory slot `slot` starts at guest page `first` (ring mode; the other
    /// modes read slot 0 only).
    pub fn set_slot_base(&mut self, slot: u32, first: u64) {
        if let Mode::Ring(ring) = &mut self.mode {
            ring.set_slot_base(slot, first);
        }
    }

    /// The guest's writes so far that trapped (first writes to a protected page), in
    /// ring mode; `None` in the bitmap modes, which do not count them.
    pub fn trapped_writes(&self) -> Option<u64> {
        match &self.mode {
            Mode::Ring(ring) => Some(ring.harvested()),
            _ => None,
        }
    }

    /// KVM stopped the vCPU because its ring is full: every entry is handed back now
    /// (their pages are still reported at the next look).
    pub fn ring_full(&mut self, vm: &VmFd) -> Result<(), kvm_ioctls::Error> {
        if let Mode::Ring(ring) = &mut self.mode {
            ring.harvest();
            ring.hand_back_all(&mut || reset_rings(vm))?;
        }
        Ok(())
    }

    /// Reads and protects again every logged page: the count of pages written since the
    /// last call (benchmarks).
    pub fn take_all(&mut self, vm: &VmFd, size: usize) -> Result<usize, kvm_ioctls::Error> {
        match &mut self.mode {
            Mode::Ring(ring) => {
                let fresh = ring.harvest();
                ring.hand_back_all(&mut || reset_rings(vm))?;
                ring.forget_pending();
                Ok(fresh)
            }
            mode => {
                let bitmap = vm.get_dirty_log(0, size)?;
                if let Mode::Manual(hot) = mode {
                    clear(vm, &bitmap, size)?;
                    hot.clear();
                }
                Ok(bitmap.iter().map(|word| word.count_ones() as usize).sum())
            }
        }
    }
}

/// Enables `cap` on `vm` with argument `arg`; whether KVM accepted.
fn enable(vm: &VmFd, cap: u32, arg: u64) -> bool {
    let mut request = kvm_enable_cap {
        cap,
        ..kvm_enable_cap::default()
    };
    request.args[0] = arg;
    vm.enable_cap(&request).is_ok()
}

/// ORs `other` into `bitmap` (bits beyond `bitmap` are ignored).
fn or_into(bitmap: &mut [u64], other: &[u64]) {
    for (word, bits) in bitmap.iter_mut().zip(other) {
        *word |= bits;
    }
}

/// Sets page `page`'s bit (pages outside the bitmap are ignored).
fn set(bitmap: &mut [u64], page: u64) {
    if let Some(word) = usize::try_from(page / 64)
        .ok()
        .and_then(|w| bitmap.get_mut(w))
    {
        *word |= 1 << (page % 64);
    }
}

/// `KVM_RESET_DIRTY_RINGS`: protects again the pages of the entries handed back.
fn reset_rings(vm: &VmFd) -> Result<(), kvm_ioctls::Error> {
    // SAFETY: an ioctl without argument on the VM fd.
    let ret = unsafe { ioctl(vm, ioctls::KVM_RESET_DIRTY_RINGS()) };
    if ret < 0 {
        return Err(errno::Error::last());
    }
    Ok(())
}

/// Protects again the pages set in `bitmap` (a bitmap of the whole slot of `size`
/// bytes), in manual mode.
fn clear(vm: &VmFd, bitmap: &[u64], size: usize) -> Result<(), kvm_ioctls::Error> {
    let pages = size / 4096;
    let request = kvm_clear_dirty_log {
        slot: 0,
        num_pages: u32::try_from(pages).expect("a domain's RAM has fewer than 2^32 pages"),
        first_page: 0,
        __bindgen_anon_1: kvm_bindings::kvm_clear_dirty_log__bindgen_ty_1 {
            dirty_bitmap: bitmap.as_ptr().cast_mut().cast(),
        },
    };
    // SAFETY: `request` names slot 0 from its first page for the slot's whole length
    // (allowed: the range ends at the end of the slot), and its bitmap pointer points
    // at `bitmap`, which holds one bit per page of the slot (KVM_GET_DIRTY_LOG made it
    // for the same size) and lives until the call returns. KVM only reads the bitmap.
    let ret = unsafe { ioctl_with_ref(vm, ioctls::KVM_CLEAR_DIRTY_LOG(), &request) };
    if ret < 0 {
        return Err(errno::Error::last());
    }
    Ok(())
}
