//! Output files are written atomically: to a temporary file in the same folder, then renamed,
//! so a killed run never leaves a half-written result behind.
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
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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

/// Writes a string atomically.
pub fn write_text_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    write_atomic(path, text.as_bytes())
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

/// `dir`'s regular files named as our temporaries whose writing process no longer runs.
pub fn stale_temps(dir: &Path) -> Vec<PathBuf> {
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
}
