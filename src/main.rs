//! The `spore` command-line tool. See `spore --help`.

mod cli;

fn main() -> std::process::ExitCode {
    limit_malloc_arenas();
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
