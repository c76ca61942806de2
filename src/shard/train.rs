//! The merge of `relevance train --seeds`: each shard's `seed-<s>/` folders placed in `OUT`
//! and one `ensemble.json` of every member, in the order of the unsharded seed list, with the
//! mean and SD of test accuracy computed over all of them as the unsharded run computes them.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Result, bail};

use super::ShardSet;
use super::merge::Shards;
use crate::records::{EnsembleRecord, read_record, write_record};

/// Merges the train shards in `set` into `out`; returns the number of members.
pub fn merge(out: &Path, shards: &Shards, set: &ShardSet) -> Result<usize> {
    let mut members = Vec::new();
    let mut first: Option<EnsembleRecord> = None;
    for k in &set.members {
        let (dir, manifest) = &shards.found[k];
        let record: EnsembleRecord = read_record(&dir.join("ensemble.json"))?;
        let position: HashMap<&str, usize> = manifest
            .items
            .iter()
            .map(|i| (i.name.as_str(), i.position))
            .collect();
        for member in &record.members {
            let folder = format!("seed-{}", member.seed);
            let Some(&p) = position.get(member.seed.to_string().as_str()) else {
                bail!(
                    "{}: seed {} is not among the shard's seeds",
                    dir.join("ensemble.json").display(),
                    member.seed
                );
            };
            super::study::place_tree(&dir.join(&folder), &out.join(&folder))?;
            let mut member = member.clone();
            let file = member.weights.file_name().unwrap_or_default().to_owned();
            member.weights = out.join(&folder).join(file);
            members.push((p, member));
        }
        first.get_or_insert(record);
    }
    let Some(first) = first else {
        bail!("no shard to merge");
    };
    members.sort_by_key(|(p, _)| *p);
    let n = members.len();
    let members = members.into_iter().map(|(_, m)| m).collect();
    let record = EnsembleRecord::of(first.arch, first.classes, members);
    write_record(&out.join("ensemble.json"), &record)?;
    Ok(n)
}
