//! The memory functions the compiler calls (the tender has no libc): `rep movsb` and
//! `rep stosb`, which cannot be turned back into calls to themselves.

use core::arch::asm;

/// # Safety
///
/// As C's `memcpy`.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    // SAFETY: per the caller, `len` bytes are readable at `src` and writable at `dest`.
    unsafe {
        asm!("rep movsb", inout("rdi") dest => _, inout("rsi") src => _, inout("rcx") len => _,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
///
/// As C's `memmove`.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, len: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize) + len {
        // SAFETY: forward copy is correct when dest is not inside src's tail.
        return unsafe { memcpy(dest, src, len) };
    }
    // SAFETY: backward copy with the direction flag, restored afterwards.
    unsafe {
        asm!("std", "rep movsb", "cld",
             inout("rdi") dest.add(len - 1) => _, inout("rsi") src.add(len - 1) => _,
             inout("rcx") len => _, options(nostack));
    }
    dest
}

/// # Safety
///
/// As C's `memset`.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, len: usize) -> *mut u8 {
    // SAFETY: per the caller, `len` bytes are writable at `dest`.
    unsafe {
        asm!("rep stosb", inout("rdi") dest => _, inout("rcx") len => _, in("al") value as u8,
             options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
///
/// As C's `memcmp`.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
    for i in 0..len {
        // SAFETY: per the caller, `len` bytes are readable at both.
        let (x, y) = unsafe {
            (
                core::ptr::read_volatile(a.add(i)),
                core::ptr::read_volatile(b.add(i)),
            )
        };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
///
/// As C's `bcmp`.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, len: usize) -> i32 {
    // SAFETY: per the caller.
    unsafe { memcmp(a, b, len) }
}
