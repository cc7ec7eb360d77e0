//! The panic boundary and the checks applied to pointers received from C.
//!
//! `catch_unwind` cannot catch the non-unwinding precondition checks of `slice::from_raw_parts`,
//! so pointer/length pairs are validated here before any slice is built.

use core::ffi::c_char;
use core::ptr;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::result::tileans_result;

/// What an exported function returns when its body panicked.
pub(crate) trait PanicValue {
    fn panic_value() -> Self;
}

impl PanicValue for tileans_result {
    fn panic_value() -> Self {
        tileans_result::TILEANS_ERR_PANIC
    }
}

macro_rules! zero_on_panic {
    ($($t:ty),*) => {$(
        impl PanicValue for $t {
            fn panic_value() -> Self {
                0
            }
        }
    )*};
}
zero_on_panic!(u32, u64, usize);

impl PanicValue for bool {
    fn panic_value() -> Self {
        false
    }
}

impl PanicValue for () {
    fn panic_value() -> Self {}
}

impl PanicValue for *const c_char {
    fn panic_value() -> Self {
        ptr::null()
    }
}

/// Run `body`, turning a panic into the return type's panic value so that no unwind reaches C.
///
/// `AssertUnwindSafe` is sound here: after a panic nothing observes the state the body was
/// touching except output buffers, whose contents the API declares unspecified on error.
pub(crate) fn boundary<T: PanicValue>(body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| T::panic_value())
}

/// [`boundary`] for bodies written with `?`: `Ok(())` becomes `TILEANS_OK`.
pub(crate) fn boundary_result(body: impl FnOnce() -> Result<(), tileans_result>) -> tileans_result {
    boundary(|| match body() {
        Ok(()) => tileans_result::TILEANS_OK,
        Err(e) => e,
    })
}

/// Checks shared by input and output buffers: `Ok(false)` for an empty buffer (any pointer),
/// `Ok(true)` for a non-empty one that `from_raw_parts` accepts.
fn check_buffer(addr: usize, is_null: bool, len: usize) -> Result<bool, tileans_result> {
    if len == 0 {
        return Ok(false);
    }
    if is_null {
        return Err(tileans_result::TILEANS_ERR_NULL_ARGUMENT);
    }
    if len > isize::MAX as usize || addr.checked_add(len).is_none() {
        return Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT);
    }
    Ok(true)
}

/// A byte buffer from C; `len == 0` gives an empty slice whatever the pointer.
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` must be valid for reads of `len` bytes for `'a`,
/// and the bytes must not be written during `'a`.
pub(crate) unsafe fn bytes_in<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], tileans_result> {
    if !check_buffer(ptr as usize, ptr.is_null(), len)? {
        return Ok(&[]);
    }
    // SAFETY: `ptr` is non-null, `u8` needs no alignment, `len <= isize::MAX` and the range does
    // not wrap (checked above); validity for reads during 'a is the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

/// A writable byte buffer from C; `len == 0` gives an empty slice whatever the pointer.
///
/// # Safety
/// When `len > 0` and `ptr` is not NULL, `ptr` must be valid for reads and writes of `len` bytes
/// for `'a`, and no other reference may access those bytes during `'a`.
pub(crate) unsafe fn bytes_out<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], tileans_result> {
    if !check_buffer(ptr as usize, ptr.is_null(), len)? {
        return Ok(&mut []);
    }
    // SAFETY: as in `bytes_in`; exclusivity during 'a is the caller's contract.
    Ok(unsafe { core::slice::from_raw_parts_mut(ptr, len) })
}

/// Whether the byte ranges `[a, a + a_len)` and `[b, b + b_len)` share a byte. Checked on
/// addresses, before a `&mut` slice is made that could alias another slice.
pub(crate) fn overlap(a: *const u8, a_len: usize, b: *const u8, b_len: usize) -> bool {
    let (a0, b0) = (a as usize, b as usize);
    a_len != 0 && b_len != 0 && a0 < b0.saturating_add(b_len) && b0 < a0.saturating_add(a_len)
}

/// Fail with `TILEANS_ERR_NULL_ARGUMENT` if a required pointer is NULL.
pub(crate) fn require<T>(p: *const T) -> Result<(), tileans_result> {
    if p.is_null() {
        Err(tileans_result::TILEANS_ERR_NULL_ARGUMENT)
    } else {
        Ok(())
    }
}

/// Store `value` through an output pointer from C (any alignment).
///
/// # Safety
/// `out` must be NULL or valid for a write of `size_of::<T>()` bytes.
pub(crate) unsafe fn put<T>(out: *mut T, value: T) -> Result<(), tileans_result> {
    require(out)?;
    // SAFETY: `out` is non-null and valid for the write (caller's contract); `write_unaligned`
    // has no alignment requirement, and T is a plain integer or `#[repr(C)]` struct of integers,
    // so overwriting without dropping the old value is correct.
    unsafe { out.write_unaligned(value) };
    Ok(())
}

/// Read a value from an input pointer from C (any alignment).
///
/// # Safety
/// `p` must be NULL or valid for a read of `size_of::<T>()` bytes holding a valid `T`.
pub(crate) unsafe fn get<T: Copy>(p: *const T) -> Result<T, tileans_result> {
    require(p)?;
    // SAFETY: `p` is non-null and valid for the read (caller's contract); `read_unaligned` has no
    // alignment requirement, and every `T` used here (integers, structs of integers) is valid for
    // any bit pattern.
    Ok(unsafe { p.read_unaligned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_values() {
        assert_eq!(boundary::<tileans_result>(|| panic!("boom")), tileans_result::TILEANS_ERR_PANIC);
        assert_eq!(boundary::<u64>(|| panic!("boom")), 0);
        assert!(!boundary::<bool>(|| panic!("boom")));
        assert!(boundary::<*const c_char>(|| panic!("boom")).is_null());
        assert_eq!(boundary_result(|| Ok(())), tileans_result::TILEANS_OK);
    }

    #[test]
    fn buffer_checks() {
        // SAFETY: zero lengths never dereference the pointer.
        unsafe {
            assert_eq!(bytes_in(ptr::null(), 0), Ok(&[][..]));
            assert!(bytes_out(ptr::null_mut(), 0).unwrap().is_empty());
        }
        // SAFETY: a NULL pointer with a non-zero length is rejected before any access.
        unsafe {
            assert_eq!(bytes_in(ptr::null(), 1), Err(tileans_result::TILEANS_ERR_NULL_ARGUMENT));
        }
        // SAFETY: lengths above isize::MAX are rejected before any access.
        unsafe {
            let p = 16usize as *const u8;
            assert_eq!(bytes_in(p, usize::MAX), Err(tileans_result::TILEANS_ERR_INVALID_ARGUMENT));
        }
        let a = [0u8; 8];
        let p = a.as_ptr();
        assert!(overlap(p, 4, p.wrapping_add(3), 5));
        assert!(overlap(p.wrapping_add(3), 5, p, 4));
        assert!(!overlap(p, 4, p.wrapping_add(4), 4));
        assert!(!overlap(p, 0, p, 8));
        assert!(overlap(p, 8, p.wrapping_add(2), 1));
    }
}
