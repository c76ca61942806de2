//! One shard's life: its configuration (the command line without `--shard`, every flag with its
//! value, the model files' SHA-256), the manifest written unfinished when it starts and finished
//! when every output is written, and the skip of a shard that already finished with the same
//! configuration (so a resubmitted array task redoes nothing).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::{MANIFEST, Shard, shard_dir};
use crate::records::{ModelFile, SCHEMA_VERSION, ShardItem, ShardManifest};
use crate::records::{read_record, write_record};

/// `argv` without `--shard K/N` (or `--shard=K/N`): the unsharded command.
pub fn without_shard(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut skip_value = false;
    for arg in argv {
        if skip_value {
            skip_value = false;
        } else if arg == "--shard" {
            skip_value = true;
        } else if !arg.starts_with("--shard=") {
            out.push(arg.clone());
        }
    }
    out
}

/// The configuration shards must share, from the unsharded `argv` (program name first): the
/// subcommand, each `--flag` with the words up to the next flag as its value, words before the
/// first flag as `inputs`, and this build's version.
pub fn config_of(argv: &[String]) -> BTreeMap<String, String> {
    let mut config = BTreeMap::new();
    config.insert("version".to_string(), env!("CARGO_PKG_VERSION").to_string());
    let mut words = argv.iter().skip(1);
    if let Some(command) = words.next() {
        config.insert("command".into(), command.clone());
    }
    let mut key = "inputs".to_string();
    for word in words {
        if let Some(flag) = word.strip_prefix("--") {
            let (flag, value) = flag.split_once('=').unwrap_or((flag, ""));
            key = format!("--{flag}");
            let entry = config.entry(key.clone()).or_default();
            append(entry, value);
        } else {
            let entry = config.entry(key.clone()).or_default();
            append(entry, word);
        }
    }
    config
}

fn append(entry: &mut String, word: &str) {
    if word.is_empty() {
        return;
    }
    if !entry.is_empty() {
        entry.push(' ');
    }
    entry.push_str(word);
}

/// SHA-256 of a file's bytes, lower-case hex (read in blocks, so a large checkpoint is not held
/// in memory).
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file
            .read(&mut block)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The model files with their hashes.
pub fn model_files(paths: &[PathBuf]) -> Result<Vec<ModelFile>> {
    paths
        .iter()
        .map(|p| {
            Ok(ModelFile {
                path: p.display().to_string(),
                sha256: sha256_file(p)?,
            })
        })
        .collect()
}

/// A shard being run: where it writes and its manifest.
pub struct ShardRun {
    /// `OUT/shards/K-of-N`: the shard's output folder (its `--out`).
    pub dir: PathBuf,
    manifest: ShardManifest,
}

/// What [`ShardRun::begin`] found.
pub enum Begun {
    /// The shard is to run (its unfinished manifest is written).
    Run(Box<ShardRun>),
    /// The shard already finished with the same configuration: nothing to do.
    AlreadyFinished(PathBuf),
}

impl ShardRun {
    /// Starts shard `shard` of the command `argv` (the process's command line) writing to
    /// `out`: skips it when its folder holds a finished manifest of the same configuration,
    /// else writes the manifest unfinished.
    pub fn begin(
        shard: Shard,
        argv: &[String],
        out: &Path,
        models: &[PathBuf],
        items: Vec<ShardItem>,
    ) -> Result<Begun> {
        let dir = shard_dir(out, shard);
        let unsharded = without_shard(argv);
        let manifest = ShardManifest {
            schema_version: SCHEMA_VERSION,
            command: unsharded.get(1).cloned().unwrap_or_default(),
            config: config_of(&unsharded),
            argv: unsharded,
            index: shard.index,
            count: shard.count,
            models: model_files(models)?,
            items,
            started: crate::records::utc_now(),
            finished: None,
            work: None,
        };
        let path = dir.join(MANIFEST);
        if let Ok(previous) = read_record::<ShardManifest>(&path)
            && previous.finished.is_some()
            && previous.config == manifest.config
            && previous.models == manifest.models
            && previous.items == manifest.items
        {
            return Ok(Begun::AlreadyFinished(dir));
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("{}: cannot create the shard folder", dir.display()))?;
        write_record(&path, &manifest)?;
        Ok(Begun::Run(Box::new(ShardRun { dir, manifest })))
    }

    /// Marks the shard finished (after every output is written), with the study's work counts
    /// where there are some.
    pub fn finish(mut self, work: Option<serde_json::Value>) -> Result<()> {
        self.manifest.finished = Some(crate::records::utc_now());
        self.manifest.work = work;
        write_record(&self.dir.join(MANIFEST), &self.manifest)?;
        Ok(())
    }
}

/// `argv` without `--out DIR` (or `--out=DIR`), for re-running a command into another folder.
pub fn without_out(argv: &[String]) -> Vec<String> {
    let mut out = Vec::with_capacity(argv.len());
    let mut skip_value = false;
    for arg in argv {
        if skip_value {
            skip_value = false;
        } else if arg == "--out" {
            skip_value = true;
        } else if !arg.starts_with("--out=") {
            out.push(arg.clone());
        }
    }
    out
}
