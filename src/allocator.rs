//! The allocator's settings for long, allocation-heavy commands.

/// Keeps freed memory inside the process: the allocator (mimalloc, `main.rs`) otherwise hands
/// freed pages back to the kernel 10 ms after they empty, and the next allocation pays for fresh
/// zeroed pages. The commands that call this allocate the same sizes over and over with a flat
/// peak, so what is kept is reused, not piled up: without it student scoring and large exports
/// spend much of their time in the kernel clearing fresh pages (BENCHMARKS.md, students and
/// export).
pub fn keep_freed_memory() {
    /// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the same in mimalloc 2 and 3; the
    /// Rust bindings name the options around it but not this one). -1: never purge.
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: sets one allocator option; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}
