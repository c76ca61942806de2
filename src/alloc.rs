//! Allocator settings for the command line: keep freed activation buffers for reuse.
//!
//! A forward pass that keeps every activation allocates tens to hundreds of megabytes in
//! buffers of a few megabytes each, and frees them all when the explanation is done. With
//! glibc's defaults, buffers above its (adaptive) mmap threshold are fresh `mmap`s and the free
//! top of the heap is returned to the system after each pass, so the next image pays a page
//! fault for every 4 KiB it touches again. Measured with `relevance bench` on 2 cores: ResNet-50
//! forward 66 → 45 ms, VGG-16 Grad-CAM 204 → 155 ms per image. Batches put single activations
//! above the largest threshold glibc accepts (32 MiB; VGG-16's first activation is 103 MB at
//! batch 8), so `mmap` is switched off altogether: VGG-16 LRP at batch 8, 391–396 → 297–311 ms
//! per image (a quarter of the time had gone to page faults, zeroing fresh pages and the TLB
//! shootdowns of `munmap`).

/// Raises glibc's mmap threshold to its maximum (32 MiB: activation maps of the usual CNNs at
/// 224² come from the heap and are reused), stops it from serving any allocation by `mmap`
/// (larger buffers come from the heap too, so batches reuse them as well) and raises its trim
/// threshold to 2 GiB (freed memory stays mapped for the next image). Peak memory is
/// unchanged: what is kept is what the largest pass needed anyway (`relevance bench` LRP at
/// batch 8, ResNet-50 / VGG-16: 1541 / 2624 MiB with `mmap`, 1544 / 2623 without). A no-op on
/// other platforms.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning parameters; it is called before any thread
    // of ours allocates concurrently (at start-up).
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

/// Hands the allocator's free memory back to the system (glibc's `malloc_trim`: the free top
/// of every heap and the free pages inside them), so that the resident set is what is still in
/// use. [`keep_freed_memory`] keeps freed buffers mapped on purpose; a peak-memory measurement
/// calls this first so that it counts what its own job needs, not what an earlier one left.
/// A no-op on other platforms.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns unused memory; it is safe to call at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}
