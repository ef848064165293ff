//! The `spore` command-line tool. See `spore --help`.

mod cli;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
    keep_freed_bundle_buffers();
    cli::main()
}

/// Most glibc malloc arenas the node uses (see [`limit_malloc_arenas`]).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_ARENAS: i32 = 2;

/// Caps glibc's malloc arenas at [`MALLOC_ARENAS`], unless the user set
/// `MALLOC_ARENA_MAX` (then glibc applies theirs).
///
/// glibc gives threads that allocate at the same time arenas of their own,
/// up to 8 per core, and memory freed in one arena is not reused by
/// another. A node passes every bundle's buffers between the QUIC tasks,
/// the agent thread and the writer threads, so each arena keeps its own
/// high-water mark: on a 4 GiB folder sync the receiver's peak RSS was
/// 107 MiB with glibc's default and 72 MiB with 2 arenas, at the same
/// throughput (`scripts/sync-memory.sh`, `examples/one_hop`; issue 4).
/// Only the binary does this: a program embedding the library keeps its
/// own allocator settings.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    // SAFETY: mallopt only sets an allocator parameter. It runs first in
    // main, before any other thread exists. A refusal (return value 0)
    // leaves glibc's default, which is correct, only larger.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Freed heap glibc keeps before returning it to the kernel (bytes).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_TRIM_BYTES: i32 = 16 << 20;

/// Allocations at least this large get pages of their own (bytes).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MALLOC_MMAP_BYTES: i32 = 4 << 20;

/// Keeps up to [`MALLOC_TRIM_BYTES`] of freed heap, and serves
/// allocations under [`MALLOC_MMAP_BYTES`] from the heap, unless the user
/// set glibc's own variables (`MALLOC_TRIM_THRESHOLD_`,
/// `MALLOC_MMAP_THRESHOLD_`, `GLIBC_TUNABLES`).
///
/// A transfer allocates and frees a buffer per bundle (256 KiB chunks, a
/// 16 MiB window in flight). With glibc's adaptive defaults the heap was
/// trimmed back to the kernel again and again, and every new buffer
/// faulted in and zeroed fresh pages: the profile of a one-hop transfer
/// showed page faults and page clearing at ≈ 5 % of both nodes' CPU.
/// With these settings the one-hop contact transfer of 256 MiB was faster
/// in each of 8 interleaved pairs (median 233 against 225 MB/s on the
/// 2-core machine), and peak RSS rose from 37–38 to 40–42 MiB per node.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_bundle_buffers() {
    let user_set = [
        "MALLOC_TRIM_THRESHOLD_",
        "MALLOC_MMAP_THRESHOLD_",
        "GLIBC_TUNABLES",
    ]
    .iter()
    .any(|v| std::env::var_os(v).is_some());
    if user_set {
        return;
    }
    // SAFETY: as in `limit_malloc_arenas`: allocator parameters, set
    // first in main; a refusal leaves glibc's default.
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, MALLOC_TRIM_BYTES);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MALLOC_MMAP_BYTES);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_bundle_buffers() {}
