//! File names: what a manifest may call a file, and the numbered
//! alternatives used when that name is already taken.

use super::ContentError;

/// Longest accepted file name, in bytes (the usual `NAME_MAX` of Linux,
/// macOS and Windows file systems).
pub const MAX_FILE_NAME_BYTES: usize = 255;

/// Checks that `name` is a safe base name to create inside a receive
/// directory and returns it unchanged.
///
/// Refused (never silently rewritten, so that a sender learns its mistake
/// instead of a receiver guessing): the empty string, `.` and `..`, any `/`
/// or `\` (so any directory part), NUL and every other control character
/// (C0, DEL, C1), and names longer than [`MAX_FILE_NAME_BYTES`] bytes.
/// Stripping a directory part is the sender's job.
///
/// # Errors
/// [`ContentError::InvalidFileName`] with the reason.
pub fn sanitize_file_name(name: &str) -> Result<String, ContentError> {
    let refuse = |reason| Err(ContentError::InvalidFileName { reason });
    if name.is_empty() {
        return refuse("empty");
    }
    if name == "." || name == ".." {
        return refuse("`.` and `..` are not file names");
    }
    if name.len() > MAX_FILE_NAME_BYTES {
        return refuse("longer than 255 bytes");
    }
    if name.contains(['/', '\\']) {
        return refuse("contains a path separator");
    }
    if name.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    Ok(name.to_owned())
}

/// The `attempt`-th candidate name for `name`: `name` itself for attempt 0,
/// then `stem (1).ext`, `stem (2).ext`, …
///
/// The extension is what follows the last `.` that is not the first
/// character (`a.tar.gz` → `a.tar (1).gz`, `.bashrc` → `.bashrc (1)`). If
/// the result would exceed [`MAX_FILE_NAME_BYTES`], the stem is shortened
/// at a character boundary.
pub(crate) fn numbered_name(name: &str, attempt: u32) -> String {
    if attempt == 0 {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let suffix = format!(" ({attempt})");
    let budget = MAX_FILE_NAME_BYTES.saturating_sub(suffix.len() + ext.len());
    let mut cut = stem.len().min(budget);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{suffix}{ext}", &stem[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names() {
        for ok in ["a", "report.pdf", ".hidden", "ünïcødé ✓.txt", "a..b", "..."] {
            assert_eq!(sanitize_file_name(ok).unwrap(), ok);
        }
        let longest = "x".repeat(255);
        assert!(sanitize_file_name(&longest).is_ok());
    }

    #[test]
    fn refuses_unsafe_names() {
        let long = "x".repeat(256);
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/b",
            "/abs",
            "dir\\file",
            "..\\x",
            "nul\0byte",
            "tab\there",
            "new\nline",
            "del\u{7f}",
            "c1\u{85}",
            &long,
        ] {
            let err = sanitize_file_name(bad).unwrap_err();
            assert_eq!(err.kind(), "invalid_file_name", "{bad:?}");
        }
    }

    #[test]
    fn numbered_names() {
        assert_eq!(numbered_name("a.txt", 0), "a.txt");
        assert_eq!(numbered_name("a.txt", 1), "a (1).txt");
        assert_eq!(numbered_name("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered_name(".bashrc", 1), ".bashrc (1)");
        assert_eq!(numbered_name("README", 3), "README (3)");
        let long = "é".repeat(127) + ".txt"; // 258 bytes > 255 before numbering
        let n = numbered_name(&long, 12);
        assert!(n.len() <= MAX_FILE_NAME_BYTES, "{}", n.len());
        assert!(n.ends_with(" (12).txt"));
        assert!(sanitize_file_name(&n).is_ok());
    }
}
