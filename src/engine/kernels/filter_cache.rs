//! Winograd-transformed filters kept per weight tensor, so a model's filters are transformed
//! once rather than on every convolution (for a 512×512 layer at 14², transforming the filters
//! took 8 ms, the F(2×2) convolution itself 1.6 ms).
//!
//! An entry is keyed by the address and length of the weight's values and holds a clone of the
//! weight tensor: while the entry lives the storage cannot be freed (so the address cannot be
//! reused by another tensor) nor written in place (burn only mutates storage it holds alone).
//! Entries whose weight nobody else holds any more are dropped at the next insertion, and the
//! least recently used ones go when the total exceeds [`CAPACITY`].

use std::sync::{Arc, Mutex};

use burn::backend::flex::FlexTensor;

use super::winograd::{FilterTransform, Tile};

/// Most bytes of transformed filters kept (VGG-16's three sets for LRP take ≈ 0.5 GB).
const CAPACITY: usize = 1 << 30;

struct Entry {
    weight: FlexTensor,
    key: (usize, usize, bool, Tile),
    filters: Arc<FilterTransform>,
    last_use: u64,
}

struct Cache {
    entries: Vec<Entry>,
    clock: u64,
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    entries: Vec::new(),
    clock: 0,
});

/// The filters for `weight` (values `values`, the adjoint's if `adjoint`, for Winograd variant
/// `tile`), built with `build` the first time.
pub fn filters(
    weight: &FlexTensor,
    values: &[f32],
    adjoint: bool,
    tile: Tile,
    build: impl FnOnce() -> FilterTransform,
) -> Arc<FilterTransform> {
    let key = (values.as_ptr() as usize, values.len(), adjoint, tile);
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.clock += 1;
        let now = cache.clock;
        if let Some(e) = cache.entries.iter_mut().find(|e| e.key == key) {
            e.last_use = now;
            return e.filters.clone();
        }
    }
    // Built outside the lock (it runs in parallel); a race builds twice and keeps one.
    let filters = Arc::new(build());
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entries.retain(|e| !e.weight.is_unique());
    if let Some(e) = cache.entries.iter().find(|e| e.key == key) {
        return e.filters.clone();
    }
    cache.clock += 1;
    let last_use = cache.clock;
    cache.entries.push(Entry {
        weight: weight.clone(),
        key,
        filters: filters.clone(),
        last_use,
    });
    while cache
        .entries
        .iter()
        .map(|e| e.filters.bytes())
        .sum::<usize>()
        > CAPACITY
        && cache.entries.len() > 1
    {
        let oldest = (0..cache.entries.len())
            .min_by_key(|&i| cache.entries[i].last_use)
            .expect("non-empty");
        cache.entries.swap_remove(oldest);
    }
    filters
}
