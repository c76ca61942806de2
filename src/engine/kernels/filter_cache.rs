//! Filters re-laid out for a kernel — Winograd-transformed ([`super::winograd`]) or packed for
//! the direct convolution ([`super::direct`]) — kept per weight tensor, so a model's filters are
//! prepared once rather than on every convolution (for a 512×512 layer at 14², transforming the
//! filters took 8 ms, the F(2×2) convolution itself 1.6 ms).
//!
//! An entry is keyed by the address and length of the weight's values and the layout, and holds
//! a clone of the weight tensor: while the entry lives the storage cannot be freed (so the
//! address cannot be reused by another tensor) nor written in place (burn only mutates storage
//! it holds alone). Entries whose weight nobody else holds any more are dropped at the next
//! insertion, and the least recently used ones go when the total exceeds [`CAPACITY`].

use std::any::Any;
use std::sync::{Arc, Mutex};

use burn::backend::flex::FlexTensor;

use super::winograd::Tile;

/// Most bytes of prepared filters kept (VGG-16's Winograd sets for LRP take ≈ 0.5 GB, its
/// packed direct filters ≈ 60 MB per set).
const CAPACITY: usize = 1 << 30;

/// Which layout of a weight an entry holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Winograd filters of variant `Tile`, for the forward convolution or its adjoint.
    Winograd { tile: Tile, adjoint: bool },
    /// Direct-convolution panels, for the forward convolution or its adjoint.
    Direct { adjoint: bool },
    /// Adjoint panels of a strided convolution's phases, for its stride and padding.
    Phases { stride: [usize; 2], pad: [usize; 2] },
}

/// Prepared filters that know their size.
pub trait Prepared: Any + Send + Sync {
    /// Bytes held.
    fn bytes(&self) -> usize;
}

impl Prepared for super::winograd::FilterTransform {
    fn bytes(&self) -> usize {
        super::winograd::FilterTransform::bytes(self)
    }
}

impl Prepared for super::direct::PackedFilters {
    fn bytes(&self) -> usize {
        super::direct::PackedFilters::bytes(self)
    }
}

impl Prepared for super::transposed::PhaseFilters {
    fn bytes(&self) -> usize {
        super::transposed::PhaseFilters::bytes(self)
    }
}

struct Entry {
    weight: FlexTensor,
    key: (usize, usize, Layout),
    filters: Arc<dyn Any + Send + Sync>,
    bytes: usize,
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

/// Drops the entries whose weight nobody else holds any more (their model was dropped); they
/// would otherwise go only at the next insertion.
pub fn release_unused() {
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entries.retain(|e| !e.weight.is_unique());
}

/// The filters for `weight` (values `values`) in `layout`, built with `build` the first time.
/// `T` must be the one type `layout` is always built as.
pub fn filters<T: Prepared>(
    weight: &FlexTensor,
    values: &[f32],
    layout: Layout,
    build: impl FnOnce() -> T,
) -> Arc<T> {
    let key = (values.as_ptr() as usize, values.len(), layout);
    let typed = |f: &Arc<dyn Any + Send + Sync>| {
        f.clone()
            .downcast::<T>()
            .expect("one filter type per layout")
    };
    {
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache.clock += 1;
        let now = cache.clock;
        if let Some(e) = cache.entries.iter_mut().find(|e| e.key == key) {
            e.last_use = now;
            return typed(&e.filters);
        }
    }
    // Built outside the lock (it runs in parallel); a race builds twice and keeps one.
    let filters = Arc::new(build());
    let bytes = filters.bytes();
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    cache.entries.retain(|e| !e.weight.is_unique());
    if let Some(e) = cache.entries.iter().find(|e| e.key == key) {
        return typed(&e.filters);
    }
    cache.clock += 1;
    let last_use = cache.clock;
    cache.entries.push(Entry {
        weight: weight.clone(),
        key,
        filters: filters.clone(),
        bytes,
        last_use,
    });
    while cache.entries.iter().map(|e| e.bytes).sum::<usize>() > CAPACITY && cache.entries.len() > 1
    {
        let oldest = (0..cache.entries.len())
            .min_by_key(|&i| cache.entries[i].last_use)
            .expect("non-empty");
        cache.entries.swap_remove(oldest);
    }
    filters
}
