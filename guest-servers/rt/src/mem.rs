//! The memory functions a freestanding link needs: the compiler emits calls to them for
//! copies, fills and comparisons, and no C library provides them here.
//!
//! Copies and fills use `rep movsb`/`rep stosb` in inline assembly, which the compiler
//! cannot turn back into calls to these very functions. The System V ABI guarantees the
//! direction flag is clear on function entry.

use core::arch::asm;

/// Copies `n` bytes from `src` to `dst` (which must not overlap) and returns `dst`.
///
/// # Safety
///
/// `src` must be valid for reading and `dst` for writing `n` bytes, and the two ranges
/// must not overlap.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees both ranges are valid for `n` bytes; `rep movsb`
    // copies exactly `n` bytes forwards (DF is clear) and touches nothing else.
    unsafe {
        asm!(
            "rep movsb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            inout("rsi") src => _,
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// Copies `n` bytes from `src` to `dst` (which may overlap) and returns `dst`.
///
/// # Safety
///
/// `src` must be valid for reading and `dst` for writing `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dst as usize).wrapping_sub(src as usize) >= n {
        // `dst` is below `src` or the ranges do not overlap: a forward copy never
        // overwrites a source byte before reading it.
        // SAFETY: the caller's guarantee, as for `memcpy`.
        return unsafe { memcpy(dst, src, n) };
    }
    // Here 0 < dst - src < n: copy backwards, from the last byte down.
    // SAFETY: the caller guarantees both ranges are valid for `n` (> 0) bytes, so their
    // last bytes are in bounds; `std` makes `rep movsb` go downwards for exactly `n`
    // bytes, and `cld` restores the direction flag the ABI requires to be clear.
    unsafe {
        asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack),
        );
    }
    dst
}

/// Fills `n` bytes at `dst` with the low byte of `value` and returns `dst`.
///
/// # Safety
///
/// `dst` must be valid for writing `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memset(dst: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller guarantees `dst` is valid for `n` bytes; `rep stosb` writes
    // exactly those bytes forwards (DF is clear).
    unsafe {
        asm!(
            "rep stosb",
            inout("rcx") n => _,
            inout("rdi") dst => _,
            in("al") value.to_le_bytes()[0],
            options(nostack, preserves_flags),
        );
    }
    dst
}

/// Compares `n` bytes: negative, zero or positive as `a` sorts before, equal to or
/// after `b` (bytes compared as unsigned).
///
/// # Safety
///
/// `a` and `b` must be valid for reading `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    let mut i = 0;
    while i < n {
        // SAFETY: `i < n` and the caller guarantees both ranges are valid for `n` bytes.
        let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
        i += 1;
    }
    0
}

/// Compares `n` bytes for equality only: zero when equal, non-zero otherwise.
///
/// # Safety
///
/// `a` and `b` must be valid for reading `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: same contract as `memcmp`.
    unsafe { memcmp(a, b, n) }
}

/// The unwinding personality routine the precompiled `core` refers to. Guests abort on
/// panic and never unwind, so it is never called.
#[no_mangle]
pub extern "C" fn rust_eh_personality() {}
