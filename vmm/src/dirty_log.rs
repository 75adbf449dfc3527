//! KVM's log of the pages a guest writes, read with manual re-protection
//! (`KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`), so that pages a server writes at nearly every
//! request stay writable.
//!
//! Why: after a plain `KVM_GET_DIRTY_LOG` every logged page is write-protected again,
//! and on these hosts (shadow paging under `kvm_pvm`) the first write to each of them in
//! the next request traps, at about the cost of an exit. A server writes the same few
//! pages in every request (its stack, its IPC area, its heap's top), so per request it
//! paid a trap for each. Here a page, once written, stays *hot* for [`HOT_LOOKS`] looks:
//! it is not re-protected, its bit stays set, and every look reports it as written, so
//! a checkpoint copies it again (far cheaper than a trap). A page that is not written
//! for that long is re-protected; if it is written later it traps once and is hot
//! again. The set of pages reported is a superset of the pages written since the last
//! look, which is all a checkpoint or a rollback needs.
//!
//! Without the capability, looks are plain `KVM_GET_DIRTY_LOG` calls.

use std::collections::HashMap;

use kvm_bindings::{kvm_clear_dirty_log, kvm_enable_cap, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2};
use kvm_ioctls::VmFd;
use vmm_sys_util::errno;
use vmm_sys_util::ioctl::ioctl_with_ref;

/// Looks a page stays writable after it was last found written.
pub const HOT_LOOKS: u32 = 32;

/// `KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE`: the flag that turns manual protection on.
const MANUAL_PROTECT_ENABLE: u64 = 1;

/// The ioctl kvm-ioctls does not wrap.
mod ioctls {
    use kvm_bindings::kvm_clear_dirty_log;
    use vmm_sys_util::ioctl_iowr_nr;

    /// The KVM ioctl type.
    const KVMIO: u32 = 0xAE;
    ioctl_iowr_nr!(KVM_CLEAR_DIRTY_LOG, KVMIO, 0xc0, kvm_clear_dirty_log);
}

/// The dirty log of memory slot 0 of one VM.
#[derive(Debug)]
pub struct DirtyLog {
    /// Manual re-protection is on.
    manual: bool,
    /// Hot pages (writable, reported at every look) and the looks each has left.
    hot: HashMap<u64, u32>,
}

impl DirtyLog {
    /// The log of `vm`, with manual re-protection when KVM offers it. Call before the
    /// memory slot is created.
    pub fn new(vm: &VmFd) -> DirtyLog {
        let offered = vm.check_extension_raw(u64::from(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2));
        let manual = offered & 1 != 0 && {
            let mut cap = kvm_enable_cap {
                cap: KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
                ..kvm_enable_cap::default()
            };
            cap.args[0] = MANUAL_PROTECT_ENABLE;
            vm.enable_cap(&cap).is_ok()
        };
        DirtyLog {
            manual,
            hot: HashMap::new(),
        }
    }

    /// Whether manual re-protection is on.
    pub fn is_manual(&self) -> bool {
        self.manual
    }

    /// The pages written since the last look (and the hot ones), as a bitmap of
    /// `size` bytes of memory; pages that cooled down are re-protected.
    pub fn look(&mut self, vm: &VmFd, size: usize) -> Result<Vec<u64>, kvm_ioctls::Error> {
        let bitmap = vm.get_dirty_log(0, size)?;
        if !self.manual {
            return Ok(bitmap);
        }
        let mut cool = vec![0u64; bitmap.len()];
        let mut any = false;
        for page in crate::checkpoint::pages(&bitmap) {
            let left = self.hot.entry(page).or_insert(HOT_LOOKS);
            if *left == 0 {
                self.hot.remove(&page);
                cool[(page / 64) as usize] |= 1 << (page % 64);
                any = true;
            } else {
                *left -= 1;
            }
        }
        if any {
            clear(vm, &cool, size)?;
        }
        Ok(bitmap)
    }

    /// Reads and re-protects every logged page: the count of pages written since the
    /// last call (benchmarks).
    pub fn take_all(&mut self, vm: &VmFd, size: usize) -> Result<usize, kvm_ioctls::Error> {
        let bitmap = vm.get_dirty_log(0, size)?;
        if self.manual {
            clear(vm, &bitmap, size)?;
            self.hot.clear();
        }
        Ok(bitmap.iter().map(|word| word.count_ones() as usize).sum())
    }
}

/// Re-protects the pages set in `bitmap` (a bitmap of the whole slot of `size` bytes).
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
