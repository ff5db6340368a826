//! The master's use of the C allocator (glibc): how many arenas it may use, and handing freed
//! memory back. Both serve "memory bounded by bytes": glibc gives each thread that allocates
//! under contention an arena of its own (up to 8 per core), and memory freed in one stays in
//! it. A master decoding, packing and journaling a 15 MB submission on tokio threads, blocking
//! threads and the journal's writer reached 128 MiB resident in the abuse run with the default
//! arenas, and 77 MiB with two.

/// Caps glibc at two arenas. Call it once at start, before the master's threads allocate; the
/// master allocates little per shard, so the contention two arenas add is not measurable.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; M_ARENA_MAX takes any positive count.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the heap memory freed by unpacking a large request back to the system. Decoding
/// millions of short input lines allocates millions of small strings; once they are packed and
/// freed, glibc keeps their pages in its arenas, and the master's resident size would stay
/// at its peak (about 60 bytes per line) after every large submit.
pub(crate) fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free pages of the allocator's own arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}
