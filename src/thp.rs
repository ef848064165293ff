//! Transparent huge pages (THP) off for spore's own processes.
//!
//! mimalloc, the allocator of the `spore` and `spore-sim` binaries, asks
//! the kernel for transparent huge pages on its arenas
//! (`madvise(MADV_HUGEPAGE)`). A node's memory turns over in bundle
//! buffers (256 KiB chunks) that one thread allocates and another frees:
//! each 2 MiB huge page is zeroed whole when first touched and counted
//! whole in the resident set while little of it is in use. With THP off
//! the same runs keep a third to a half less memory resident and are no
//! slower. Measured on the 2-core reference machine, interleaved, the
//! `MIMALLOC_ALLOW_THP=0` environment variable standing in for
//! [`disable`]: one-hop contact transfer of 512 MiB, peak RSS at C
//! 103–137 → 53–77 MiB, 271–303 → 302–338 MB/s (3 pairs); 1 GiB folder
//! sync, peak RSS A 107 → 85 MiB and C 128–136 → 93–98 MiB at the same
//! speed; `scripts/sim-bench.sh`, peak RSS 211–379 → 186 MiB at the same
//! events/s.
//!
//! Linux only (`prctl(PR_SET_THP_DISABLE)`, man prctl(2)); elsewhere the
//! functions do nothing. The setting is the process's and is inherited
//! by children across `fork` and `execve`, so programs the node starts
//! (job services, spec/jobs.md §4) set it back first
//! ([`enable_in_child`]).

/// Turns transparent huge pages off for the calling process from its
/// next page fault on (pages already huge stay so). Call it first thing
/// in `main`.
///
/// Returns `true` if the kernel took the setting; `false` on other
/// systems or when it refused (a kernel without THP support): nothing
/// else changes then.
pub fn disable() -> bool {
    #[cfg(target_os = "linux")]
    {
        nix::sys::prctl::set_thp_disable(true).is_ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Gives a child process the system's THP setting back, undoing an
/// inherited [`disable`]. Meant for `Command::pre_exec` (it makes one
/// system call, which is async-signal-safe).
///
/// # Errors
/// None in practice: a refusal (a kernel without THP support) is ignored,
/// since the child then has nothing to get back.
pub fn enable_in_child() -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let _ = nix::sys::prctl::set_thp_disable(false);
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The `THP_enabled` line of a `/proc/PID/status` (Linux ≥ 5.0).
    fn thp_enabled_line(status: &str) -> Option<&str> {
        status.lines().find(|l| l.starts_with("THP_enabled:"))
    }

    #[test]
    fn disable_turns_thp_off_and_a_child_gets_it_back() {
        assert!(disable(), "prctl(PR_SET_THP_DISABLE) refused");
        let own = std::fs::read_to_string("/proc/self/status").unwrap();
        assert_eq!(
            thp_enabled_line(&own).map(|l| l.split_whitespace().collect::<Vec<_>>()),
            Some(vec!["THP_enabled:", "0"])
        );
        // A child started plainly inherits the setting; one whose pre_exec
        // calls enable_in_child does not.
        let child = |restore: bool| {
            use std::os::unix::process::CommandExt;
            let mut cmd = std::process::Command::new("cat");
            cmd.arg("/proc/self/status");
            if restore {
                // SAFETY: the closure makes one prctl system call
                // (async-signal-safe) and touches no shared state.
                unsafe { cmd.pre_exec(enable_in_child) };
            }
            let out = cmd.output().unwrap();
            let text = String::from_utf8(out.stdout).unwrap();
            thp_enabled_line(&text).map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        };
        assert_eq!(child(false).as_deref(), Some("0"));
        assert_eq!(child(true).as_deref(), Some("1"));
    }
}
