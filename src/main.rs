//! The `spore` command-line tool. See `spore --help`.

mod cli;

/// The binary's allocator: mimalloc (feature `mimalloc`, on by default).
///
/// A node passes every bundle's buffer (256 KiB chunks, a 16 MiB window in
/// flight) from the task that reads it to the agent thread or the writer
/// that frees it. glibc's malloc gave those buffers back to the kernel and
/// faulted fresh, zeroed pages in for the next ones: about 9 000 page
/// faults per node for 256 MiB moved one hop, 5–7 % of each node's CPU in
/// clearing pages. mimalloc reuses them (600–1 300 faults). Measured in
/// interleaved pairs on the 2-core reference machine: one-hop contact
/// transfer of 256 MiB 285–304 → 298–343 MB/s at 1.17–1.37 instead of
/// 1.36–1.49 CPU-seconds; 10 000 small files 11.1–11.5 k → 13.1–13.2 k
/// files/s. Peak RSS rose: A 55–58 → 102–107 MiB and C 66–78 → 125–149
/// MiB while a 1 GiB file syncs, mostly from mimalloc's transparent huge
/// pages, which `main` turns off ([`spore::thp`]: A 85, C 93–98 MiB).
/// README §Limits gives the knobs (`MIMALLOC_ARENA_EAGER_COMMIT=0`; a
/// build without the `mimalloc` feature uses the system allocator).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    #[cfg(feature = "mimalloc")]
    spore::thp::disable();
    cli::main()
}
