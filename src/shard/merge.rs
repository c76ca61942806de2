//! Reading a run's shards for `relevance merge`: every `OUT/shards/K-of-N/shard.json`, checked
//! to belong to one run (same shard count, command, flags and model hashes — a difference is
//! refused naming the field and the shards), and sorted into finished, unfinished and missing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::{MANIFEST, Shard, ShardSet, shards_dir};
use crate::records::{ShardManifest, read_record};

/// The shards of one run, as found on disk.
pub struct Shards {
    /// `N`.
    pub count: usize,
    /// The manifest of every shard folder present, by index.
    pub found: BTreeMap<usize, (PathBuf, ShardManifest)>,
}

impl Shards {
    /// Reads every shard folder under `OUT/shards` and checks that they belong together.
    pub fn read(out: &Path) -> Result<Shards> {
        let dir = shards_dir(out);
        let entries = std::fs::read_dir(&dir).map_err(|e| {
            anyhow::anyhow!(
                "{}: no shards to merge ({e}); run the command with --shard K/N first",
                dir.display()
            )
        })?;
        let mut found: BTreeMap<Shard, (PathBuf, Option<ShardManifest>)> = BTreeMap::new();
        for entry in entries {
            let path = entry?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let Some(shard) = Shard::from_folder(&name) else {
                continue; // not a shard folder (K-of-N)
            };
            let manifest = path.join(MANIFEST);
            let record = if manifest.exists() {
                Some(read_record::<ShardManifest>(&manifest)?)
            } else {
                None
            };
            found.insert(shard, (path, record));
        }
        let counts: Vec<usize> = found.keys().map(|s| s.count).collect();
        let Some(&count) = counts.first() else {
            bail!("{}: no shard folders (K-of-N) to merge", dir.display());
        };
        if let Some(other) = counts.iter().find(|&&c| c != count) {
            bail!(
                "{}: shards of different counts ({count} and {other}): field 'count' differs",
                dir.display()
            );
        }
        let found: BTreeMap<usize, (PathBuf, ShardManifest)> = found
            .into_iter()
            .filter_map(|(s, (p, m))| Some((s.index, (p, m?))))
            .collect();
        let shards = Shards { count, found };
        shards.check_same_run()?;
        Ok(shards)
    }

    /// Refuses shards whose configurations differ, naming the first differing field.
    fn check_same_run(&self) -> Result<()> {
        let mut it = self.found.iter();
        let Some((&first_k, (_, first))) = it.next() else {
            return Ok(());
        };
        for (&k, (_, m)) in it {
            let name = |i: usize| format!("shard {i}/{}", self.count);
            if let Some(field) = first_difference(first, m) {
                bail!(
                    "shards do not belong to one run: {field} differs between {} and {}",
                    name(first_k),
                    name(k)
                );
            }
        }
        Ok(())
    }

    /// Shards with a finished manifest.
    pub fn finished(&self) -> Vec<usize> {
        self.found
            .iter()
            .filter(|(_, (_, m))| m.finished.is_some())
            .map(|(&k, _)| k)
            .collect()
    }

    /// Shards whose manifest says they have not finished (running, failed or cancelled).
    pub fn unfinished(&self) -> Vec<usize> {
        self.found
            .iter()
            .filter(|(_, (_, m))| m.finished.is_none())
            .map(|(&k, _)| k)
            .collect()
    }

    /// Shards without a manifest.
    pub fn missing(&self) -> Vec<usize> {
        (1..=self.count)
            .filter(|k| !self.found.contains_key(k))
            .collect()
    }

    /// The finished shards as a set, refusing an incomplete run unless `allow_partial`.
    pub fn mergeable(&self, allow_partial: bool) -> Result<ShardSet> {
        let finished = self.finished();
        if finished.is_empty() {
            bail!("no shard of {} has finished: nothing to merge", self.count);
        }
        let (missing, unfinished) = (self.missing(), self.unfinished());
        if !(allow_partial || missing.is_empty() && unfinished.is_empty()) {
            bail!(
                "{} of {} shards are not done ({}): re-run them, or merge what exists with \
                 --allow-partial",
                missing.len() + unfinished.len(),
                self.count,
                self.not_done()
            );
        }
        Ok(ShardSet {
            count: self.count,
            members: finished.into_iter().collect(),
        })
    }

    /// `missing: 3/4; unfinished: 2/4`.
    pub fn not_done(&self) -> String {
        let list = |v: Vec<usize>| {
            v.iter()
                .map(|k| format!("{k}/{}", self.count))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut parts = Vec::new();
        if !self.missing().is_empty() {
            parts.push(format!("missing {}", list(self.missing())));
        }
        if !self.unfinished().is_empty() {
            parts.push(format!("unfinished {}", list(self.unfinished())));
        }
        parts.join("; ")
    }

    /// The manifest of the first finished shard (they agree on everything but the shard).
    pub fn first(&self) -> &ShardManifest {
        let k = self.finished()[0];
        &self.found[&k].1
    }

    /// `relevance merge --status`: one line per shard, then a count.
    pub fn status(&self) -> String {
        let mut text = String::new();
        for k in 1..=self.count {
            let line = match self.found.get(&k) {
                Some((_, m)) => match &m.finished {
                    Some(t) => format!("finished {t}"),
                    None => format!("not finished (started {})", m.started),
                },
                None => "missing".to_string(),
            };
            let _ = writeln!(text, "shard {k}/{}: {line}", self.count);
        }
        let _ = write!(
            text,
            "{} of {} shards finished",
            self.finished().len(),
            self.count
        );
        text
    }
}

/// The first field in which two shards' manifests differ: the command, a flag (by name), a
/// model file or its hash.
pub fn first_difference(a: &ShardManifest, b: &ShardManifest) -> Option<String> {
    if a.command != b.command {
        return Some(format!("the command ('{}' vs '{}')", a.command, b.command));
    }
    let keys: std::collections::BTreeSet<&String> =
        a.config.keys().chain(b.config.keys()).collect();
    for key in keys {
        let (x, y) = (a.config.get(key), b.config.get(key));
        if x != y {
            let show = |v: Option<&String>| v.map_or("absent".to_string(), |v| format!("'{v}'"));
            return Some(format!("{key} ({} vs {})", show(x), show(y)));
        }
    }
    if a.models.len() != b.models.len() {
        return Some("the number of model files".into());
    }
    for (x, y) in a.models.iter().zip(&b.models) {
        if x != y {
            return Some(format!(
                "model file {} (sha256 {} vs {} {})",
                x.path, x.sha256, y.path, y.sha256
            ));
        }
    }
    None
}
