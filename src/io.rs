//! Output files: their names and how they are written.
//!
//! Every name built from user text (an input stem, a layer, a class) becomes one safe path
//! component ([`safe_component`], [`child_path`]), so no output lands outside `--out`.
//!
//! Files are written atomically: to a temporary file in the same folder, then renamed, so a
//! killed run never leaves a half-written result behind.
//!
//! A temporary file is removed when its write fails (a full disk, a file-size limit). A process
//! that is killed cannot remove its own, so the first atomic write into a folder sweeps that
//! folder's temporary files of this naming whose writing process no longer runs.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Marks a temporary file of ours: `.<name>.tmp<pid>` or `.<name>.tmp<pid>-<n>`.
const TEMP_MARK: &str = ".tmp";

/// Writes `bytes` to `path` via a temporary sibling and a rename; creates parent folders.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    sweep_stale_temps_once(dir);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(temp_name(&name));
    let written = write_synced(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Best effort: the error that matters is the write's, not the clean-up's.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Puts a copy of the file `from` at `to` atomically: a hard link (no bytes copied; safe because
/// every output is replaced by rename, never rewritten in place) or, across file systems, a
/// copy, made under a temporary name and renamed. Not synced file by file: a merge that places
/// thousands of per-image files would otherwise spend seconds in `fsync`, and a merge
/// interrupted by a crash is simply run again.
pub(crate) fn link_or_copy_atomic(from: &Path, to: &Path) -> std::io::Result<()> {
    let dir = to
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(temp_name(&name));
    let placed = std::fs::hard_link(from, &tmp)
        .or_else(|_| std::fs::copy(from, &tmp).map(|_| ()))
        .and_then(|()| std::fs::rename(&tmp, to));
    // Also after a successful rename: when `to` already is a link to the same file (a merge
    // run again), rename does nothing and leaves the temporary name (POSIX).
    let _ = std::fs::remove_file(&tmp);
    placed
}

/// Writes a string atomically.
pub(crate) fn write_text_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
}

/// Longest output-name component [`safe_component`] returns, in bytes: well under every file
/// system's 255-byte limit, leaving room for the suffixes the commands append
/// (`.<class>.<method>.npy`, `.tmp<pid>` of [`write_atomic`]).
pub(crate) const MAX_COMPONENT_BYTES: usize = 120;

/// SHA-256 of `bytes` in lower-case hex (the identity of a file's content).
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Maps any user-provided text (a layer, input, class, model or augmentation name) to ONE safe
/// path component for an output file or folder name: ASCII letters, digits, `-`, `_` and `.`
/// only (so no `/`, `\`, NUL or control characters), never empty, not starting with `.` (so
/// never `.`, `..` or a hidden name) or `-` (it would read as a flag), at most
/// [`MAX_COMPONENT_BYTES`] bytes. A name that had to be changed or shortened gets `-` and a
/// short stable hash of the original appended, so two different names never share an output
/// file; a name that is already safe (`features.28`, `scan0`) is returned unchanged.
pub(crate) fn safe_component(name: &str) -> String {
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
pub(crate) fn child_path(dir: &Path, component: &str) -> std::io::Result<PathBuf> {
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
pub(crate) fn unique_name(name: String, seen: &mut std::collections::HashSet<String>) -> String {
    let mut candidate = name.clone();
    let mut k = 2;
    while !seen.insert(candidate.clone()) {
        candidate = format!("{name}-{k}");
        k += 1;
    }
    candidate
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// A temporary name unique to this process and this write: two threads writing the same file
/// must not share a temporary.
fn temp_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!(".{name}{TEMP_MARK}{}-{n}", std::process::id())
}

/// The process id in a temporary file name of ours, or `None` for any other name.
/// True when `file_name` is named as one of our temporary files (of any process): a merge
/// leaves those out, since a killed shard's temporaries are not results.
pub(crate) fn is_temp_name(file_name: &str) -> bool {
    temp_owner(file_name).is_some()
}

fn temp_owner(file_name: &str) -> Option<u32> {
    if !file_name.starts_with('.') {
        return None;
    }
    let at = file_name.rfind(TEMP_MARK)?;
    let tail = &file_name[at + TEMP_MARK.len()..];
    let (pid, counter) = tail.split_once('-').unwrap_or((tail, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if at == 0 || !all_digits(pid) || !all_digits(counter) {
        return None;
    }
    pid.parse().ok()
}

/// Whether process `pid` is running; where that cannot be told, it is taken to be running, so
/// nothing is swept that might still be written.
fn process_runs(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc/self");
    if !proc_root.exists() {
        return true;
    }
    Path::new("/proc").join(pid.to_string()).exists()
}

/// Removes `dir`'s temporary files whose writer is gone, once per folder and process.
fn sweep_stale_temps_once(dir: &Path) {
    static SWEPT: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    {
        let mut swept = SWEPT.lock().unwrap_or_else(|e| e.into_inner());
        if !swept
            .get_or_insert_with(HashSet::new)
            .insert(dir.to_path_buf())
        {
            return;
        }
    }
    for stale in stale_temps(dir) {
        let _ = std::fs::remove_file(stale);
    }
}

/// The entries of `dir` sorted by path, each with its own file type (a symbolic link reports
/// itself, never its target, so callers that skip links never follow one); empty when `dir`
/// cannot be read. Scans of run folders use it so that their order does not depend on the
/// file system's.
pub(crate) fn sorted_entries(dir: &Path) -> Vec<(PathBuf, std::fs::FileType)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut entries: Vec<(PathBuf, std::fs::FileType)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.path(), e.file_type().ok()?)))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

/// `dir`'s regular files named as our temporaries whose writing process no longer runs.
pub(crate) fn stale_temps(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            temp_owner(&e.file_name().to_string_lossy()).is_some_and(|pid| !process_runs(pid))
        })
        .map(|e| e.path())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_their_owner() {
        let name = temp_name("maps.npy");
        assert_eq!(temp_owner(&name), Some(std::process::id()));
        assert_eq!(temp_owner(".x.npy.tmp123"), Some(123), "the older naming");
        assert_eq!(temp_owner(".x.npy.tmp123-4"), Some(123));
        for other in [
            "x.npy.tmp123",
            ".x.npy.tmp",
            ".x.npy.tmp12a",
            ".tmp123",
            ".x.tmp1-",
        ] {
            assert_eq!(temp_owner(other), None, "{other}");
        }
    }

    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("relevance-io-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // The target is a non-empty folder, so the rename fails after the temporary was written.
        let target = dir.join("taken");
        std::fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"data").is_err());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(left, vec![std::ffi::OsString::from("taken")]);
    }

    #[test]
    fn sweeps_only_temporaries_of_finished_processes() {
        let dir = std::env::temp_dir().join(format!("relevance-sweep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // Above Linux's largest possible pid (2^22), so no process can own it.
        let dead = dir.join(".a.npy.tmp4194305");
        let live = dir.join(format!(".b.npy.tmp{}-0", std::process::id()));
        let user = dir.join(".notes.tmp");
        for f in [&dead, &live, &user] {
            std::fs::write(f, b"x").unwrap();
        }
        write_atomic(&dir.join("c.npy"), b"c").unwrap();
        let exists = [dead.exists(), live.exists(), user.exists()];
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(exists, [false, true, true]);
    }

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
