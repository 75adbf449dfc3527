//! The vCPU state a checkpoint saves and a rollback restores: everything a guest can
//! change, read as cheaply as KVM allows (Firecracker's `VcpuState` is the reference
//! list).
//!
//! What is saved at every checkpoint, and what it costs:
//! - general registers: KVM copies them into the shared run page at every exit to
//!   the VMM (`KVM_CAP_SYNC_REGS`), so reading them is a memory copy;
//! - segment, control and descriptor-table registers (`kvm_sregs`) and vCPU events
//!   (pending exception, NMI, interrupt shadow): for a kernel-mode domain, KVM fills
//!   them in the run page at each exit (no ioctl). For a user-mode domain they are
//!   read at the first checkpoint and carried over, like the FPU state below: having
//!   KVM copy them at every exit cost about 6.5 us *per exit* on these hosts (the null
//!   call of `ankh bench ipc` went from 41 to 55 us), far more than the state is worth
//!   at CPL3. What a CPL3 guest can change there is its data segments (DS, ES, FS,
//!   GS; CS and SS only through gates into its own stubs, which stop it), so a
//!   rollback compares those with the guest's current ones and refuses
//!   ([`DomainError::CarriedStateChanged`]) when they changed; from then on that
//!   domain's special registers are read at every checkpoint (one ioctl). Its vCPU
//!   events cannot hold anything at a hypercall exit: the VM has no interrupt
//!   controller (no interrupt or NMI can be pending), an exit happens at an
//!   instruction boundary (no exception in flight), and CPL3 cannot `sti`;
//! - the floating-point state, *lazily*: Ankh's guests are built without floating
//!   point, so a user-mode domain's FPU state is read (one `KVM_GET_XSAVE`, about
//!   4 us here, more than the rest of a checkpoint together) at its first checkpoint
//!   only and carried over. Any guest can still use x87, and nothing tells the VMM
//!   cheaply that it did (the lazy-FPU traps, CR0.TS or CR0.EM set so that the first
//!   x87 instruction raises #NM, would work on VMX/SVM hosts, but kvm_pvm ignores both
//!   for user-mode guests: x87 runs with either bit set). So a rollback first reads
//!   the FPU state the guest has now: when its contents differ from the carried-over
//!   one (which components the CPU marks as in use is left out: the mark moves on its
//!   own, see `same_xsave_state`), the guest used the FPU since it was saved, the
//!   state at the checkpoint is unknown, and the rollback is refused ([`DomainError::CarriedStateChanged`]: never a silent stale
//!   restore; recovery then escalates); from then on that domain's FPU state is read
//!   at every checkpoint. Kernel-mode domains, and domains marked with
//!   `Domain::save_fpu_at_every_checkpoint`, read it at every checkpoint from the
//!   start. (A guest that used the FPU between checkpoints and left it exactly as it
//!   was saved at the first one, registers and last-instruction pointers alike, would
//!   go unnoticed; the rollback then restores that same state.)
//!   XSAVE rather than `KVM_GET_FPU` because its header records which components
//!   are in their initial state; `KVM_SET_FPU` leaves that header alone, so a restore
//!   after `fninit` could load the initial state instead of the saved one.
//!
//! The privileged state (debug registers, XCR0, the MSRs KVM saves) changes only
//! through code at CPL0 (`mov dr`, `xsetbv`, `wrmsr`), except DR6 and DR7, which the
//! CPU also updates when it delivers a #DB. It is read at the first checkpoint, and
//! again at a checkpoint only when code at CPL0 other than the VMM-checked exception
//! stubs may have run (the checkpoint is then *tainted*, and so are the ones after
//! it until a rollback to an untainted one): in a kernel-mode domain always; in a
//! user-mode domain once the guest wrote one of its own code pages (the dirty log says
//! so for free). A user-mode guest reaches CPL0 only through the IDT's gates, which
//! lead to the image's exception stubs (the IDT, GDT, TSS and page tables are in
//! supervisor-only pages; SYSCALL is off in EFER and SYSENTER's MSRs are zero, so both
//! fault). Unmodified, those stubs report the exception and halt, and the VMM never
//! resumes the domain. A rollback writes back the debug registers every time (a #DB
//! stops the domain, so they differ only after a #DB; one ioctl), and the rest of the
//! privileged state when the checkpoint is tainted or the guest wrote its code since.
//! The costs: `KVM_GET_DEBUGREGS`, `KVM_GET_XCRS` and `KVM_GET_MSRS` (one ioctl per
//! 256 MSRs) each tainted checkpoint, their `SET`s each such rollback.
//!
//! Left out, and why it cannot change or must not be restored:
//! - the time stamp counter (`IA32_TSC`, `IA32_TSC_ADJUST`): it is time, not state;
//!   a rollback must not turn the guest's clock back;
//! - the local APIC and the MP state: the VM has no in-kernel irqchip (HLT is an exit
//!   to the VMM, which stops the domain), so there is no APIC, and the MP state stays
//!   runnable;
//! - CPUID: set once at creation, the guest cannot change it.

use std::ops::Range;
use std::sync::Arc;

use kvm_bindings::{
    kvm_msr_entry, Msrs, KVM_CAP_SYNC_REGS, KVM_CAP_XSAVE2, KVM_MAX_MSR_ENTRIES,
    KVM_SYNC_X86_EVENTS, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS,
};
use kvm_ioctls::{Cap, Kvm, SyncReg, VcpuFd, VmFd};
use vmm_sys_util::errno;

use crate::checkpoint::{FpuState, PrivilegedState, VcpuState};
use crate::image::GuestImage;
use crate::x86_boot::GuestMode;
use virtio_seep::abi::layout::PAGE_SIZE;

/// `IA32_TIME_STAMP_COUNTER` and `IA32_TSC_ADJUST`: time, never rolled back.
const TIME_MSRS: [u32; 2] = [0x10, 0x3b];

/// A failed KVM call: its name and error.
pub(super) type IoctlError = (&'static str, kvm_ioctls::Error);

/// How a domain's vCPU state is read and written.
pub(super) struct VcpuAccess {
    /// KVM copies the general registers into the run page at every exit.
    pub(super) sync_regs: bool,
    /// The same for the special registers and the vCPU events (checkpointing domains).
    sync_sregs: bool,
    sync_events: bool,
    /// `KVM_GET_XSAVE` covers the guest's whole floating-point state.
    xsave: bool,
    /// KVM has `KVM_GET_XCRS`.
    xcrs: bool,
    /// The FPU state is read at every checkpoint, not only the first (module docs).
    pub(super) fpu_every_checkpoint: bool,
    /// The special registers are read (by ioctl) at every checkpoint of a domain whose
    /// run page does not carry them (module docs).
    pub(super) sregs_every_checkpoint: bool,
    mode: GuestMode,
    /// The page numbers of the image's code: a user-mode guest that writes them may
    /// run its own code at CPL0.
    code_pages: Vec<Range<u64>>,
    /// The MSRs KVM saves, less [`TIME_MSRS`]; narrowed at the first read to those
    /// this vCPU has and KVM lets the VMM write back.
    msr_indices: Vec<u32>,
    /// `msr_indices` was narrowed.
    msrs_checked: bool,
}

impl VcpuAccess {
    /// Sets up the run page's copies on `vcpu` (the special registers and events only
    /// for a domain that takes checkpoints) and finds what KVM offers.
    pub(super) fn new(
        kvm: &Kvm,
        vm: &VmFd,
        vcpu: &mut VcpuFd,
        mode: GuestMode,
        image: &GuestImage,
        checkpoints: bool,
    ) -> Result<VcpuAccess, IoctlError> {
        let offered =
            u32::try_from(kvm.check_extension_raw(u64::from(KVM_CAP_SYNC_REGS))).unwrap_or(0);
        let sync = |bit: u32, reg: SyncReg, vcpu: &mut VcpuFd| {
            let on = offered & bit != 0;
            if on {
                vcpu.set_sync_valid_reg(reg);
            }
            on
        };
        let sync_regs = sync(KVM_SYNC_X86_REGS, SyncReg::Register, vcpu);
        // Only kernel-mode domains have them copied at every exit (module docs).
        let kernel_checkpoints = checkpoints && mode == GuestMode::Kernel;
        let sync_sregs =
            kernel_checkpoints && sync(KVM_SYNC_X86_SREGS, SyncReg::SystemRegister, vcpu);
        let sync_events =
            kernel_checkpoints && sync(KVM_SYNC_X86_EVENTS, SyncReg::VcpuEvents, vcpu);
        // `kvm_xsave` is 4 KiB; a guest with a larger area (AMX) needs KVM_GET_XSAVE2.
        let xsave_size = usize::try_from(vm.check_extension_raw(u64::from(KVM_CAP_XSAVE2)))
            .unwrap_or(usize::MAX);
        let xsave = kvm.check_extension(Cap::Xsave)
            && xsave_size <= std::mem::size_of::<kvm_bindings::kvm_xsave>();
        let msr_indices = match checkpoints {
            true => kvm
                .get_msr_index_list()
                .map_err(|e| ("KVM_GET_MSR_INDEX_LIST", e))?
                .as_slice()
                .iter()
                .copied()
                .filter(|index| !TIME_MSRS.contains(index))
                .collect(),
            false => Vec::new(),
        };
        let code_pages = image
            .segments()
            .iter()
            .filter(|segment| segment.executable)
            .map(|s| s.addr / PAGE_SIZE..(s.addr + s.mem_size).div_ceil(PAGE_SIZE))
            .collect();
        Ok(VcpuAccess {
            sync_regs,
            sync_sregs,
            sync_events,
            xsave,
            xcrs: kvm.check_extension(Cap::Xcrs),
            fpu_every_checkpoint: mode == GuestMode::Kernel,
            sregs_every_checkpoint: false,
            mode,
            code_pages,
            msr_indices,
            msrs_checked: false,
        })
    }

    /// Whether guest pages `pages` include one of the image's code pages.
    pub(super) fn overlaps_code(&self, pages: &Range<u64>) -> bool {
        self.code_pages
            .iter()
            .any(|code| code.start < pages.end && pages.start < code.end)
    }

    /// Whether `written` (a page bitmap) holds one of the image's code pages.
    pub(super) fn code_written(&self, written: &[u64]) -> bool {
        self.mode == GuestMode::User
            && self.code_pages.iter().flat_map(Range::clone).any(|page| {
                usize::try_from(page / 64)
                    .ok()
                    .and_then(|word| written.get(word))
                    .is_some_and(|bits| bits & (1 << (page % 64)) != 0)
            })
    }

    /// Reads the state a checkpoint keeps. `previous` is the last checkpoint's state,
    /// whose privileged part is carried over when no CPL0 code but the stubs could run
    /// since; `code_written`: the guest wrote its code pages since.
    pub(super) fn read(
        &mut self,
        vcpu: &VcpuFd,
        previous: Option<&VcpuState>,
        code_written: bool,
    ) -> Result<VcpuState, IoctlError> {
        let synced = vcpu.sync_regs();
        let regs = match self.sync_regs {
            true => synced.regs,
            false => vcpu.get_regs().map_err(|e| ("KVM_GET_REGS", e))?,
        };
        let sregs = match (self.sync_sregs, previous) {
            (true, _) => synced.sregs,
            (false, Some(state)) if !self.sregs_every_checkpoint => state.sregs,
            (false, _) => vcpu.get_sregs().map_err(|e| ("KVM_GET_SREGS", e))?,
        };
        let events = match (self.sync_events, previous) {
            (true, _) => synced.events,
            (false, Some(state)) if self.mode == GuestMode::User => state.events,
            (false, _) => vcpu
                .get_vcpu_events()
                .map_err(|e| ("KVM_GET_VCPU_EVENTS", e))?,
        };
        let fpu = match previous {
            Some(state) if !self.fpu_every_checkpoint => Arc::clone(&state.fpu),
            _ => Arc::new(self.read_fpu(vcpu)?),
        };
        let tainted = self.mode == GuestMode::Kernel
            || code_written
            || previous.is_some_and(|state| state.tainted);
        let privileged = match previous {
            Some(state) if !tainted => Arc::clone(&state.privileged),
            _ => Arc::new(self.read_privileged(vcpu)?),
        };
        Ok(VcpuState {
            regs,
            sregs,
            events,
            fpu,
            privileged,
            tainted,
        })
    }

    fn read_fpu(&self, vcpu: &VcpuFd) -> Result<FpuState, IoctlError> {
        Ok(match self.xsave {
            true => FpuState::Xsave(Box::new(
                vcpu.get_xsave().map_err(|e| ("KVM_GET_XSAVE", e))?,
            )),
            false => FpuState::Legacy(Box::new(vcpu.get_fpu().map_err(|e| ("KVM_GET_FPU", e))?)),
        })
    }

    /// What of the carried-over state of `saved` the guest changed since, if anything
    /// (module docs): its data segments (when the special registers are carried over)
    /// or its FPU state (when that is). A rollback to `saved` would restore it stale.
    pub(super) fn carried_state_changed(
        &mut self,
        vcpu: &VcpuFd,
        saved: &VcpuState,
    ) -> Result<Option<&'static str>, IoctlError> {
        if !self.sync_sregs && !self.sregs_every_checkpoint {
            let now = vcpu.get_sregs().map_err(|e| ("KVM_GET_SREGS", e))?;
            let data = |s: &kvm_bindings::kvm_sregs| {
                [s.ds, s.es, s.fs, s.gs].map(|seg| (seg.selector, seg.base))
            };
            if data(&now) != data(&saved.sregs) {
                self.sregs_every_checkpoint = true;
                return Ok(Some("data segments"));
            }
        }
        if !self.fpu_every_checkpoint && !self.fpu_unchanged(vcpu, &saved.fpu)? {
            self.fpu_every_checkpoint = true;
            return Ok(Some("FPU state"));
        }
        Ok(None)
    }

    /// Whether the vCPU's FPU state now equals `saved` (the guest has not used the
    /// FPU since, as far as its state tells).
    pub(super) fn fpu_unchanged(
        &self,
        vcpu: &VcpuFd,
        saved: &FpuState,
    ) -> Result<bool, IoctlError> {
        Ok(match (self.read_fpu(vcpu)?, saved) {
            (FpuState::Xsave(now), FpuState::Xsave(then)) => {
                same_xsave_state(&now.region, &then.region)
            }
            (FpuState::Legacy(now), FpuState::Legacy(then)) => now == *then,
            _ => false,
        })
    }

    fn read_privileged(&mut self, vcpu: &VcpuFd) -> Result<PrivilegedState, IoctlError> {
        let debugregs = vcpu
            .get_debug_regs()
            .map_err(|e| ("KVM_GET_DEBUGREGS", e))?;
        let xcrs = match self.xcrs {
            true => Some(vcpu.get_xcrs().map_err(|e| ("KVM_GET_XCRS", e))?),
            false => None,
        };
        Ok(PrivilegedState {
            debugregs,
            xcrs,
            msrs: self.read_msrs(vcpu)?,
        })
    }

    /// Reads the MSRs of `msr_indices`, KVM_MAX_MSR_ENTRIES per ioctl. The first time,
    /// the list is narrowed to the MSRs this vCPU has and KVM lets the VMM write back
    /// (KVM stops at the first MSR it refuses: that one is dropped and the call
    /// repeated after it), by writing back the values just read (no change), so a
    /// rollback's KVM_SET_MSRS cannot fail on them.
    fn read_msrs(&mut self, vcpu: &VcpuFd) -> Result<Vec<Msrs>, IoctlError> {
        let mut chunks = Vec::new();
        let mut start = 0;
        while start < self.msr_indices.len() {
            let end = (start + KVM_MAX_MSR_ENTRIES).min(self.msr_indices.len());
            let mut msrs = msr_entries(&self.msr_indices[start..end], "KVM_GET_MSRS")?;
            let mut done = vcpu.get_msrs(&mut msrs).map_err(|e| ("KVM_GET_MSRS", e))?;
            if !self.msrs_checked && done == msrs.as_slice().len() {
                done = vcpu.set_msrs(&msrs).map_err(|e| ("KVM_SET_MSRS", e))?;
            }
            if done < end - start {
                // Refused: drop it, keep what came before, go on after it.
                self.msr_indices.remove(start + done);
                msrs = Msrs::from_entries(&msrs.as_slice()[..done])
                    .map_err(|_| ("KVM_GET_MSRS", errno::Error::new(libc::E2BIG)))?;
            }
            start += done;
            if !msrs.as_slice().is_empty() {
                chunks.push(msrs);
            }
        }
        self.msrs_checked = true;
        Ok(chunks)
    }

    /// Puts `state` back into the vCPU: everything a checkpoint reads at every
    /// checkpoint, the debug registers, and, with `privileged`, the rest of the
    /// privileged state. The run page's copies are kept equal to it (KVM refreshes
    /// them only at the next exit, and a checkpoint may come first).
    pub(super) fn write(
        &self,
        vcpu: &mut VcpuFd,
        state: &VcpuState,
        privileged: bool,
    ) -> Result<(), IoctlError> {
        vcpu.set_sregs(&state.sregs)
            .map_err(|e| ("KVM_SET_SREGS", e))?;
        vcpu.set_regs(&state.regs)
            .map_err(|e| ("KVM_SET_REGS", e))?;
        match &*state.fpu {
            FpuState::Xsave(xsave) => {
                // SAFETY: KVM reads at most the guest's XSAVE area, which `new` checked
                // fits `kvm_xsave` (KVM_CAP_XSAVE2), and the buffer is a whole
                // `kvm_xsave` that KVM_GET_XSAVE filled for this vCPU.
                unsafe { vcpu.set_xsave(xsave) }.map_err(|e| ("KVM_SET_XSAVE", e))?;
            }
            FpuState::Legacy(fpu) => vcpu.set_fpu(fpu).map_err(|e| ("KVM_SET_FPU", e))?,
        }
        let saved = &state.privileged;
        if privileged {
            if let Some(xcrs) = &saved.xcrs {
                vcpu.set_xcrs(xcrs).map_err(|e| ("KVM_SET_XCRS", e))?;
            }
            for msrs in &saved.msrs {
                let written = vcpu.set_msrs(msrs).map_err(|e| ("KVM_SET_MSRS", e))?;
                if written != msrs.as_slice().len() {
                    return Err(("KVM_SET_MSRS", errno::Error::new(libc::EIO)));
                }
            }
        }
        vcpu.set_debug_regs(&saved.debugregs)
            .map_err(|e| ("KVM_SET_DEBUGREGS", e))?;
        vcpu.set_vcpu_events(&state.events)
            .map_err(|e| ("KVM_SET_VCPU_EVENTS", e))?;
        let synced = vcpu.sync_regs_mut();
        if self.sync_regs {
            synced.regs = state.regs;
        }
        if self.sync_sregs {
            synced.sregs = state.sregs;
        }
        if self.sync_events {
            synced.events = state.events;
        }
        Ok(())
    }

    /// Keeps the run page's copy of the general registers equal to what was just set
    /// with an ioctl (see [`write`](Self::write)).
    pub(super) fn note_regs(&self, vcpu: &mut VcpuFd, regs: &kvm_bindings::kvm_regs) {
        if self.sync_regs {
            vcpu.sync_regs_mut().regs = *regs;
        }
    }

    /// Keeps the run page's copy of the special registers equal to what was just set.
    pub(super) fn note_sregs(&self, vcpu: &mut VcpuFd, sregs: &kvm_bindings::kvm_sregs) {
        if self.sync_sregs {
            vcpu.sync_regs_mut().sregs = *sregs;
        }
    }
}

/// The words of an XSAVE area (standard format, as `KVM_GET_XSAVE` gives it) that
/// hold the header's XSTATE_BV: which components the CPU marks as in use.
const XSTATE_BV_WORDS: Range<usize> = 128..130;

/// Whether two XSAVE areas hold the same floating-point state. XSTATE_BV is left out:
/// it says whether a component is *marked* in use, not what it holds, and the
/// kernel writes a component's initial values into the area when the bit is clear.
/// The mark moves without the guest touching the FPU: in a kill storm, after a
/// watchdog timeout, x87 came back marked in use with its initial values, and the
/// rollback was refused as if the guest had used the FPU (a controlled shutdown in 2
/// of 4 runs, and again with every other byte of the area equal).
fn same_xsave_state(now: &[u32], then: &[u32]) -> bool {
    now.len() == then.len()
        && now
            .iter()
            .zip(then)
            .enumerate()
            .all(|(word, (now, then))| now == then || XSTATE_BV_WORDS.contains(&word))
}

/// An MSR list to read into: `indices` with zero values.
fn msr_entries(indices: &[u32], what: &'static str) -> Result<Msrs, IoctlError> {
    let entries: Vec<kvm_msr_entry> = indices
        .iter()
        .map(|&index| kvm_msr_entry {
            index,
            ..Default::default()
        })
        .collect();
    Msrs::from_entries(&entries).map_err(|_| (what, errno::Error::new(libc::E2BIG)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An XSAVE area with `xstate_bv` in its header and `fcw` as the x87 control word.
    fn area(xstate_bv: u32, fcw: u16) -> Vec<u32> {
        let mut region = vec![0u32; 1024];
        region[0] = u32::from(fcw);
        region[XSTATE_BV_WORDS.start] = xstate_bv;
        region
    }

    #[test]
    fn a_component_marked_in_use_with_the_same_values_is_the_same_state() {
        // x87 marked in use (bit 0) with its initial control word, against not marked
        // (the kernel then writes the same initial values).
        assert!(same_xsave_state(&area(3, 0x37f), &area(2, 0x37f)));
    }

    #[test]
    fn different_values_are_a_different_state_whatever_the_marks() {
        assert!(!same_xsave_state(&area(3, 0x27f), &area(3, 0x37f)));
        assert!(!same_xsave_state(&area(2, 0x27f), &area(3, 0x37f)));
        assert!(!same_xsave_state(&area(3, 0x37f)[..512], &area(3, 0x37f)));
    }
}
