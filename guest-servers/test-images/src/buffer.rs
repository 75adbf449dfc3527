//! Large static buffers for the IPC images, in `.bss` (untouched pages cost nothing).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

/// A page-aligned static buffer of `N` bytes, zeroed, handed out once.
#[repr(C, align(4096))]
pub struct OnceBuffer<const N: usize> {
    bytes: UnsafeCell<[u8; N]>,
    taken: AtomicBool,
}

// SAFETY: the bytes are only reached through `take`, which hands out the one reference
// at most once.
unsafe impl<const N: usize> Sync for OnceBuffer<N> {}

impl<const N: usize> OnceBuffer<N> {
    /// A zeroed buffer (in `.bss` when used for a static).
    pub const fn new() -> OnceBuffer<N> {
        OnceBuffer {
            bytes: UnsafeCell::new([0; N]),
            taken: AtomicBool::new(false),
        }
    }

    /// The buffer, the first time.
    ///
    /// # Panics
    ///
    /// When called a second time.
    // A `&mut` from a `&`: sound here because the flag hands it out only once.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> &'static mut [u8; N] {
        // `swap` is an `xchg`: no fence instruction, SSE-free.
        assert!(
            !self.taken.swap(true, Ordering::Relaxed),
            "OnceBuffer taken twice"
        );
        // SAFETY: the flag makes this line run once per buffer, so this is the only
        // reference to the bytes ever created; the static lives forever.
        unsafe { &mut *self.bytes.get() }
    }
}

impl<const N: usize> Default for OnceBuffer<N> {
    fn default() -> OnceBuffer<N> {
        OnceBuffer::new()
    }
}

#[cfg(test)]
mod tests {
    use super::OnceBuffer;

    static BUFFER: OnceBuffer<16> = OnceBuffer::new();

    #[test]
    fn taken_once_zeroed_and_aligned() {
        let bytes = BUFFER.take();
        assert_eq!(bytes, &[0; 16]);
        assert_eq!(bytes.as_ptr() as usize % 4096, 0);
        let again = std::panic::catch_unwind(|| {
            BUFFER.take();
        });
        assert!(again.is_err());
    }
}
