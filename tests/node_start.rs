//! Node start-up housekeeping with a real process.

mod common;

use spore::harness::NodeProcess;

#[test]
fn partial_inbox_files_left_by_a_crash_are_removed_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    let partial = dir.join("inbox").join(".spore-partial-abc123");
    let kept = dir.join("inbox").join("report.pdf");
    std::fs::write(&partial, vec![7u8; 1000]).unwrap();
    std::fs::write(&kept, b"a delivered file").unwrap();
    // A folder file synced without an accept dir lands in an inbox
    // subfolder; a crash while writing it leaves its partial file there.
    let nested = dir.join("inbox").join("field").join("photos");
    std::fs::create_dir_all(&nested).unwrap();
    let nested_partial = nested.join(".spore-partial-def456");
    std::fs::write(&nested_partial, vec![7u8; 1000]).unwrap();
    let mut c = NodeProcess::start(&common::exe(), &dir, "c", &[]).unwrap();
    assert!(!partial.exists(), "partial file removed");
    assert!(
        !nested_partial.exists(),
        "partial file in an inbox subfolder removed"
    );
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        b"a delivered file",
        "real files untouched"
    );
    c.stop();
}
