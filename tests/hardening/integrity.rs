//! Integrity of outputs and of the process: a closed standard output ends a command quietly,
//! and temporary files of atomic writes never outlive a failed write or a killed run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::common::{Sandbox, assert_ok, binary, png, run_limited, s};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Every file below `dir` whose name marks a temporary of an atomic write.
fn temporaries(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else if entry.file_name().to_string_lossy().contains(".tmp") {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_closed_stdout_ends_predict_quietly() {
    // `relevance predict … | head -1`: the reader is gone before the first line is written.
    let sandbox = Sandbox::new("pipe");
    let image = sandbox.input("a.png", &png(20, 20));
    let inputs = vec![s(&image).to_string(); 64];
    let mut child = Command::new(binary())
        .args(["predict", "--model", s(&fixture("tiny_cnn.onnx"))])
        .args(&inputs)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

#[test]
fn a_write_that_fails_for_lack_of_room_leaves_no_temporary() {
    // A file-size limit makes every write past 4 KiB fail with EFBIG, as a full disk would
    // fail it with ENOSPC; SIGXFSZ is ignored so the write returns the error.
    use std::os::unix::process::CommandExt;
    let sandbox = Sandbox::new("full-disk");
    let out_dir = sandbox.out().join("synth");
    let mut command = Command::new(binary());
    command.args([
        "data",
        "synth",
        "--out",
        s(&out_dir),
        "--n",
        "20",
        "--size",
        "64",
    ]);
    // SAFETY: setrlimit and signal are async-signal-safe and change only the child.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4096,
                rlim_max: 4096,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = command.output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(temporaries(&sandbox.out()), Vec::<PathBuf>::new());
}

#[test]
fn a_rerun_sweeps_the_temporaries_a_killed_run_left() {
    let sandbox = Sandbox::new("killed");
    let out_dir = sandbox.out().join("synth");
    let split = out_dir.join("train").join("benign");
    std::fs::create_dir_all(&split).unwrap();
    // What a killed writer leaves: Linux pids stay below 2^22, so this owner cannot run.
    let stale = split.join(".img_00000.png.tmp4194305");
    std::fs::write(&stale, b"half").unwrap();
    let args = [
        "data",
        "synth",
        "--out",
        s(&out_dir),
        "--n",
        "40",
        "--size",
        "32",
    ];

    // A run killed part-way, then a rerun: nothing half-written survives either.
    let mut killed = Command::new(binary())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    killed.kill().ok();
    killed.wait().unwrap();
    assert_ok(&run_limited(&sandbox.cwd(), &args));
    assert!(!stale.exists(), "the stale temporary survived the rerun");
    assert_eq!(temporaries(&sandbox.out()), Vec::<PathBuf>::new());
    assert!(out_dir.join("dataset.json").is_file());
}
