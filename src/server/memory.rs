//! The server's allocator: jemalloc, with no single allocation larger than the
//! configured limits can need.
//!
//! Why jemalloc: with thousands of connections and rooms alive, glibc's malloc
//! left the heap fragmented (10,000 idle connections settled at 64-67 MiB with
//! a periodic `malloc_trim`, about 20 MiB of it free memory it could not give
//! back); jemalloc's size classes settle the same load at about 55 MiB and use
//! ~5 % less CPU per relayed edit. Its background thread returns free pages by
//! itself (decay), so nothing here trims.
//!
//! Why a bound: jemalloc reserves memory with `MAP_NORESERVE`, so a fallible
//! reservation of an absurd size (yrs's `try_reserve` for a count a hostile
//! frame declares) would succeed where glibc's refused it, and yrs would then
//! fill the hash table's control bytes: gigabytes for five bytes on the wire.
//! pairpad's own checks refuse such counts before yrs sees them
//! (`sync::schema`, `sync::protocol`; the allocation-bomb frames of
//! `tests/interop/corpus.test.mjs`); [`BoundedJemalloc`] backs them up for any
//! path they miss: it refuses any single request above [`largest_allocation`],
//! so the reservation fails and yrs reports a decoding error. The bound is far
//! above what the configured limits need ([`allow_allocations_for`]).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The bound before [`allow_allocations_for`] raises it: 1 GiB, a thousand
/// times the default frame limit and 16 times the default history limit.
pub const DEFAULT_LARGEST_ALLOCATION: usize = 1 << 30;

/// How many times the largest configured byte limit one allocation may take
/// (a document's encoding next to its decoded form, a doubling `Vec`).
const HEADROOM: usize = 8;

static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(DEFAULT_LARGEST_ALLOCATION);

/// The largest single allocation the server makes; larger ones fail.
pub fn largest_allocation() -> usize {
    LARGEST_ALLOCATION.load(Ordering::Relaxed)
}

/// Raises the bound so that [`HEADROOM`] times `largest_limit` bytes (the
/// largest byte limit the server was configured with) still fits.
pub fn allow_allocations_for(largest_limit: u64) {
    LARGEST_ALLOCATION.fetch_max(room_for(largest_limit), Ordering::Relaxed);
}

/// The bound `largest_limit` needs.
fn room_for(largest_limit: u64) -> usize {
    usize::try_from(largest_limit)
        .unwrap_or(usize::MAX)
        .saturating_mul(HEADROOM)
}

/// jemalloc that refuses single requests above [`largest_allocation`]: the
/// caller sees an allocation failure (an error from `try_reserve`).
pub struct BoundedJemalloc;

impl BoundedJemalloc {
    fn allowed(size: usize) -> bool {
        size <= largest_allocation()
    }
}

// SAFETY: every call is passed on unchanged to jemalloc, which upholds
// GlobalAlloc's contract, or answered with null, which the contract allows
// for any request that cannot be satisfied.
unsafe impl GlobalAlloc for BoundedJemalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !Self::allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        tikv_jemallocator::Jemalloc.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !Self::allowed(layout.size()) {
            return std::ptr::null_mut();
        }
        tikv_jemallocator::Jemalloc.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        tikv_jemallocator::Jemalloc.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !Self::allowed(new_size) {
            return std::ptr::null_mut();
        }
        tikv_jemallocator::Jemalloc.realloc(ptr, layout, new_size)
    }
}

/// jemalloc's options, read before `main` (its `malloc_conf` symbol, under
/// the prefix tikv-jemalloc-sys builds it with). One arena: one async thread
/// does nearly all allocation, and memory freed in one arena serves no other
/// (the peak of 10,000 connections syncing is ~8 MiB lower). One background
/// thread returns free pages, also while the server is idle; after 1 s rather
/// than jemalloc's 10 (the peak under `bench/run.sh`'s stress load is ~3 MiB
/// lower, at no measurable CPU).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: Option<&'static std::ffi::c_char> = Some(
    // SAFETY: a pointer to the first byte of a 'static C string literal.
    unsafe {
        &*c"background_thread:true,max_background_threads:1,narenas:1,dirty_decay_ms:1000,muzzy_decay_ms:0"
            .as_ptr()
    },
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_above_the_bound_fails_and_ordinary_ones_succeed() {
        let allocator = BoundedJemalloc;
        let absurd = Layout::from_size_align(largest_allocation() + 1, 8).unwrap();
        let ordinary = Layout::from_size_align(64 * 1024, 8).unwrap();
        // SAFETY: layouts are non-zero in size; what is allocated is freed
        // with the same layout.
        unsafe {
            assert!(allocator.alloc(absurd).is_null());
            assert!(allocator.alloc_zeroed(absurd).is_null());
            let ptr = allocator.alloc(ordinary);
            assert!(!ptr.is_null());
            assert!(allocator.realloc(ptr, ordinary, absurd.size()).is_null());
            // A failed realloc leaves the block as it was.
            allocator.dealloc(ptr, ordinary);
        }
    }

    #[test]
    fn the_default_bound_covers_the_default_limits_and_larger_limits_raise_it() {
        use crate::domain::limits::*;
        for limit in [
            DEFAULT_MAX_FRAME_BYTES as u64,
            DEFAULT_MAX_DOCUMENT_BYTES as u64,
            DEFAULT_MAX_HISTORY_BYTES,
        ] {
            assert!(room_for(limit) <= DEFAULT_LARGEST_ALLOCATION);
        }
        assert_eq!(room_for(1 << 30), 8 << 30);
        assert_eq!(room_for(u64::MAX), usize::MAX);
    }
}
