//! The harness shared by the hardening cases: a sandbox folder per case, the binary run in a
//! child process under an address-space limit and a wall-clock limit, and the assertions every
//! case makes (one error line naming the file, exit status 1, nothing written outside `out/`).

#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Address-space ceiling of a case's child process. The real work of every case fits in a few
/// hundred MiB; a hostile header that makes the binary reserve what it claims exceeds this and
/// the allocation fails (abort, exit 134) instead of succeeding slowly.
pub const MEMORY_CEILING: u64 = 2 << 30;

/// Wall-clock ceiling of a case: every case is a small file that must be refused at once.
pub const TIME_CEILING: Duration = Duration::from_secs(120);

/// A fresh folder for one case: `cwd/` is the child's working directory, `out/` the output
/// folder it is given, `inputs/` where the case puts its files. Removed on drop.
pub struct Sandbox {
    pub root: PathBuf,
}

impl Sandbox {
    pub fn new(tag: &str) -> Sandbox {
        let root = std::env::temp_dir().join(format!(
            "relevance-hardening-{tag}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&root);
        for sub in ["cwd", "out", "inputs"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        Sandbox { root }
    }
    pub fn cwd(&self) -> PathBuf {
        self.root.join("cwd")
    }
    pub fn out(&self) -> PathBuf {
        self.root.join("out")
    }
    pub fn inputs(&self) -> PathBuf {
        self.root.join("inputs")
    }
    /// Writes `bytes` to `inputs/<name>` (creating folders) and returns the path.
    pub fn input(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.inputs().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        path
    }
    /// Every file and folder below the sandbox root, relative to it.
    pub fn listing(&self) -> BTreeSet<PathBuf> {
        let mut all = BTreeSet::new();
        list(&self.root, &self.root, &mut all);
        all
    }
    /// Asserts that nothing below the sandbox changed outside `out/` between `before` and now.
    pub fn assert_nothing_outside_out(&self, before: &BTreeSet<PathBuf>) {
        let after = self.listing();
        let added: Vec<&PathBuf> = after
            .difference(before)
            .filter(|p| !p.starts_with("out"))
            .collect();
        assert!(added.is_empty(), "written outside out/: {added:?}");
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

fn list(root: &Path, dir: &Path, all: &mut BTreeSet<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        all.insert(path.strip_prefix(root).unwrap().to_path_buf());
        // Links are listed, never followed: a case may plant a link to `/`.
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            list(root, &path, all);
        }
    }
}

/// Runs `relevance ARGS` in `cwd` under [`MEMORY_CEILING`] and [`TIME_CEILING`]; a child still
/// running at the time ceiling is killed and the case fails.
pub fn run_limited(cwd: &Path, args: &[&str]) -> Output {
    run_limited_with(cwd, args, &[])
}

/// [`run_limited`] with extra environment variables.
pub fn run_limited_with(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(env!("CARGO_BIN_EXE_relevance"));
    command
        .args(args)
        .current_dir(cwd)
        .envs(env.iter().copied())
        .env("RAYON_NUM_THREADS", "2")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: MEMORY_CEILING,
                rlim_max: MEMORY_CEILING,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn().expect("start relevance");
    // Drain the pipes on threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut buf).ok();
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut buf).ok();
        buf
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > TIME_CEILING {
            child.kill().ok();
            child.wait().ok();
            panic!("relevance {args:?} ran past {TIME_CEILING:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        status,
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
    }
}

/// Asserts the one-line refusal: exit status 1 (not a panic's 101, not an abort's 134), stderr
/// exactly one line `error: …` that contains every needle (the file's name, what is wrong).
pub fn assert_refused(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit status 1, got {:?}; stderr: {stderr}",
        out.status
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line; stderr: {stderr}");
    assert!(lines[0].starts_with("error: "), "stderr: {stderr}");
    for needle in needles {
        assert!(
            lines[0].contains(needle),
            "'{needle}' missing from: {stderr}"
        );
    }
    lines[0].to_string()
}

/// Asserts a successful run and returns its stdout.
pub fn assert_ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `path` as a `&str` for argument lists.
pub fn s(path: &Path) -> &str {
    path.to_str().expect("utf-8 test path")
}

/// A small valid RGB PNG of `w`×`h` with a gradient, as bytes.
pub fn png(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 % 256) as u8, (y * 5 % 256) as u8, ((x + y) % 256) as u8])
    });
    let mut bytes = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )
    .unwrap();
    bytes
}
