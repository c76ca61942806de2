//! Output files are written atomically: to a temporary file in the same folder, then renamed,
//! so a killed run never leaves a half-written result behind.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` via a temporary sibling and a rename; creates parent folders.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// Writes a string atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
}

/// Longest output-name component [`safe_component`] returns, in bytes: well under every file
/// system's 255-byte limit, leaving room for the suffixes the commands append
/// (`.<class>.<method>.npy`, `.tmp<pid>` of [`write_atomic`]).
pub const MAX_COMPONENT_BYTES: usize = 120;

/// Maps any user-provided text (a layer, input, class, model or augmentation name) to ONE safe
/// path component for an output file or folder name: ASCII letters, digits, `-`, `_` and `.`
/// only (so no `/`, `\`, NUL or control characters), never empty, not starting with `.` (so
/// never `.`, `..` or a hidden name) or `-` (it would read as a flag), at most
/// [`MAX_COMPONENT_BYTES`] bytes. A name that had to be changed or shortened gets `-` and a
/// short stable hash of the original appended, so two different names never share an output
/// file; a name that is already safe (`features.28`, `scan0`) is returned unchanged.
pub fn safe_component(name: &str) -> String {
    let mapped: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut safe = match mapped.strip_prefix(['-', '.']) {
        Some(rest) => format!("_{rest}"),
        None => mapped,
    };
    if safe.is_empty() {
        safe.push('_');
    }
    if safe == name && safe.len() <= MAX_COMPONENT_BYTES {
        return safe;
    }
    let tag = format!("-{:08x}", stable_hash(name));
    // Only ASCII is left, so any byte index is a character boundary.
    safe.truncate(MAX_COMPONENT_BYTES - tag.len());
    safe + &tag
}

/// 32-bit FNV-1a of `text` folded from 64 bits: stable across runs, platforms and versions
/// (unlike `std`'s hasher), so an output name is the same every time.
fn stable_hash(text: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 32)) as u32
}

/// `dir/component` after checking that `component` is one plain path component (no separator,
/// not `.`/`..`, not absolute, not empty), so the file lands directly inside `dir`: the last
/// line of defence for callers that build output names from user text (pass such text through
/// [`safe_component`] first).
pub fn child_path(dir: &Path, component: &str) -> std::io::Result<PathBuf> {
    let mut parts = Path::new(component).components();
    match (parts.next(), parts.next()) {
        (Some(std::path::Component::Normal(_)), None) if !component.contains(['/', '\\', '\0']) => {
            Ok(dir.join(component))
        }
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "'{component}' is not a plain file name (refusing to write outside {})",
                dir.display()
            ),
        )),
    }
}

/// Makes `name` unique among `seen` by appending `-2`, `-3`, … (and records it), so outputs of
/// inputs that share a name do not overwrite each other.
pub fn unique_name(name: String, seen: &mut std::collections::HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut k = 2;
    while !seen.insert(candidate.clone()) {
        candidate = format!("{name}-{k}");
        k += 1;
    }
    candidate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_names_are_kept() {
        for name in ["scan0", "seed-3", "glioma_a", "features.8", "img.v2"] {
            assert_eq!(safe_component(name), name);
        }
    }

    #[test]
    fn hostile_names_become_one_plain_component() {
        let long = "a".repeat(300);
        let cases = [
            "/features/features.0/Conv",
            "..",
            ".",
            "...",
            "",
            "/",
            "/etc/passwd",
            "../../x",
            "a\0b",
            "a\\b",
            ".hidden",
            "-rf",
            "tab\there",
            "\u{7f}",
            "é",
            long.as_str(),
        ];
        let mut seen = std::collections::HashSet::new();
        for name in cases {
            let safe = safe_component(name);
            assert!(
                !safe.is_empty() && safe.len() <= MAX_COMPONENT_BYTES,
                "{name:?} → {safe}"
            );
            assert!(
                safe.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)),
                "{name:?} → {safe}"
            );
            assert!(!safe.starts_with(['-', '.']), "{name:?} → {safe}");
            assert!(
                child_path(Path::new("out"), &safe).is_ok(),
                "{name:?} → {safe}"
            );
            assert!(seen.insert(safe.clone()), "{name:?} → {safe} collides");
            assert_eq!(safe_component(name), safe, "stable");
        }
    }

    #[test]
    fn names_that_differ_only_in_replaced_characters_do_not_collide() {
        assert_ne!(safe_component("a/b"), safe_component("a.b"));
        assert_ne!(safe_component("a/b"), safe_component("a_b"));
        let (x, y) = ("x".repeat(200) + "1", "x".repeat(200) + "2");
        assert_ne!(safe_component(&x), safe_component(&y));
    }

    #[test]
    fn child_path_refuses_anything_but_one_component() {
        for bad in ["", ".", "..", "/abs", "a/b", "a\\b", "a\0b", "../x"] {
            assert!(child_path(Path::new("out"), bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            child_path(Path::new("out"), "a.npy").unwrap(),
            Path::new("out/a.npy")
        );
    }
}
