//! Deterministic shards of a data set: which of `N` array tasks handles which sample.
//!
//! The partition is a pure function of the samples' identities (class name and path), so every
//! machine of a cluster computes the same one from the same data, whatever order its file
//! system lists the files in. It is balanced by class: the classes are taken in sorted order,
//! each class's samples sorted by identity, and the samples dealt round-robin to the shards,
//! continuing where the previous class stopped — every shard gets `⌊n_c/N⌋` or `⌈n_c/N⌉` of
//! each class `c` and `⌊n/N⌋` or `⌈n/N⌉` samples in all.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// One shard `K` of `N` (1-based, as Slurm's `SLURM_ARRAY_TASK_ID` counts with `--array=1-N`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    /// `K`, in `1..=N`.
    pub index: usize,
    /// `N`, at least 1.
    pub count: usize,
}

/// Most shards a run may be cut into: far beyond any array a scheduler accepts, small enough
/// that nothing sized by it can be huge.
pub const MAX_SHARDS: usize = 100_000;

impl Shard {
    /// Shard `index` of `count`, refused unless `1 ≤ index ≤ count ≤ MAX_SHARDS`.
    pub fn new(index: usize, count: usize) -> Result<Self, String> {
        if count == 0 || count > MAX_SHARDS {
            return Err(format!(
                "shard count must lie in 1..={MAX_SHARDS}, got {count}"
            ));
        }
        if index == 0 || index > count {
            return Err(format!(
                "shard index must lie in 1..={count} (shards count from 1), got {index}"
            ));
        }
        Ok(Shard { index, count })
    }

    /// The folder name of the shard's outputs, `K-of-N`.
    pub fn folder(&self) -> String {
        format!("{}-of-{}", self.index, self.count)
    }

    /// Parses a folder name written by [`Shard::folder`].
    pub fn from_folder(name: &str) -> Option<Self> {
        let (k, n) = name.split_once("-of-")?;
        Shard::new(k.parse().ok()?, n.parse().ok()?).ok()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = String;
    /// `K/N`, e.g. `3/16`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("bad shard '{s}': use K/N with 1 ≤ K ≤ N, e.g. 3/16");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let k: usize = k.trim().parse().map_err(|_| bad())?;
        let n: usize = n.trim().parse().map_err(|_| bad())?;
        Shard::new(k, n).map_err(|e| format!("bad shard '{s}': {e}"))
    }
}

/// Some shards of one partition: one shard of an array task, or the finished shards a partial
/// merge covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSet {
    /// `N`.
    pub count: usize,
    /// The shard indices kept, each in `1..=N`.
    pub members: BTreeSet<usize>,
}

impl From<Shard> for ShardSet {
    fn from(shard: Shard) -> Self {
        ShardSet {
            count: shard.count,
            members: BTreeSet::from([shard.index]),
        }
    }
}

/// A sample's identity for the partition: its class name and a name unique within the data
/// set (its path).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SampleId {
    /// Class name (the folder of an ImageFolder sample, empty when unlabelled).
    pub class: String,
    /// Unique name, e.g. the path.
    pub name: String,
}

/// The shard (1-based) of each sample, in the samples' order: classes in sorted order, each
/// class's samples sorted by name and dealt round-robin, continuing from where the previous
/// class ended. Equal identities keep their order (a stable sort), so the result depends only
/// on the multiset of identities.
pub fn assign(ids: &[SampleId], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, id) in ids.iter().enumerate() {
        by_class.entry(id.class.as_str()).or_default().push(i);
    }
    let mut shard_of = vec![0; ids.len()];
    let mut next = 0usize;
    for members in by_class.values_mut() {
        members.sort_by(|&a, &b| ids[a].name.cmp(&ids[b].name));
        for &i in members.iter() {
            shard_of[i] = next % count + 1;
            next += 1;
        }
    }
    shard_of
}

/// The items of `items` that fall into `set`, in their order; `id` gives each item's identity.
pub fn keep<T>(items: Vec<T>, set: &ShardSet, id: impl Fn(&T) -> SampleId) -> Vec<T> {
    let ids: Vec<SampleId> = items.iter().map(&id).collect();
    let shard_of = assign(&ids, set.count);
    items
        .into_iter()
        .zip(shard_of)
        .filter(|(_, s)| set.members.contains(s))
        .map(|(item, _)| item)
        .collect()
}
