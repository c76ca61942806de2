//! Filters re-laid out for a kernel — Winograd-transformed ([`super::winograd`]) or packed for
//! the direct convolution ([`super::direct`]) — kept per weight tensor, so a model's filters are
//! prepared once rather than on every convolution (for a 512×512 layer at 14², transforming the
//! filters took 8 ms, the F(2×2) convolution itself 1.6 ms).
//!
//! An entry is keyed by the address and length of the weight's values and the layout. The cache
//! holds one clone of each weight that has entries: while it does, the storage cannot be freed
//! (so the address cannot be reused by another tensor) nor written in place (burn only mutates
//! storage it holds alone). Entries whose weight nobody else holds any more are dropped at the
//! next insertion, and the least recently used ones go when the total exceeds [`CAPACITY`].
//! One clone per weight, not one per entry: two entries of one weight (a convolution's forward
//! and adjoint layouts) each holding a clone kept each other's weight alive, so a dropped
//! model's filters stayed until evicted (`relevance bench` after ResNet-50's rows: ≈ 300 MB).

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
    /// Lane panels of a 1×1 convolution, for the forward convolution or its adjoint.
    Lanes { adjoint: bool },
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

impl Prepared for super::lanes::LanePanels {
    fn bytes(&self) -> usize {
        super::lanes::LanePanels::bytes(self)
    }
}

impl Prepared for super::transposed::PhaseFilters {
    fn bytes(&self) -> usize {
        super::transposed::PhaseFilters::bytes(self)
    }
}

struct Entry {
    key: (usize, usize, Layout),
    filters: Arc<dyn Any + Send + Sync>,
    bytes: usize,
    last_use: u64,
}

/// A weight with entries, and the address and length of its values (the entries' key).
struct Held {
    weight: FlexTensor,
    storage: (usize, usize),
}

struct Cache {
    held: Vec<Held>,
    entries: Vec<Entry>,
    clock: u64,
}

impl Cache {
    /// Drops the weights only the cache holds, with their entries.
    fn release_unused(&mut self) {
        let mut released = Vec::new();
        self.held.retain(|h| {
            let unused = h.weight.is_unique();
            if unused {
                released.push(h.storage);
            }
            !unused
        });
        self.entries
            .retain(|e| !released.contains(&(e.key.0, e.key.1)));
    }

    /// Removes entry `i`, and the cache's clone of its weight if no entry is left for it.
    fn remove(&mut self, i: usize) {
        let (address, len, _) = self.entries.swap_remove(i).key;
        if !self
            .entries
            .iter()
            .any(|e| (e.key.0, e.key.1) == (address, len))
        {
            self.held.retain(|h| h.storage != (address, len));
        }
    }
}

static CACHE: Mutex<Cache> = Mutex::new(Cache {
    held: Vec::new(),
    entries: Vec::new(),
    clock: 0,
});

/// Drops the entries whose weight nobody else holds any more (their model was dropped); they
/// would otherwise go only at the next insertion.
pub fn release_unused() {
    CACHE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .release_unused();
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
    cache.release_unused();
    if let Some(e) = cache.entries.iter().find(|e| e.key == key) {
        return typed(&e.filters);
    }
    cache.clock += 1;
    let last_use = cache.clock;
    let storage = (key.0, key.1);
    if !cache.held.iter().any(|h| h.storage == storage) {
        cache.held.push(Held {
            weight: weight.clone(),
            storage,
        });
    }
    cache.entries.push(Entry {
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
        cache.remove(oldest);
    }
    filters
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dummy(usize);

    impl Prepared for Dummy {
        fn bytes(&self) -> usize {
            self.0
        }
    }

    fn entries_for(values: &[f32]) -> usize {
        let storage = (values.as_ptr() as usize, values.len());
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entries
            .iter()
            .filter(|e| (e.key.0, e.key.1) == storage)
            .count()
    }

    /// A weight cached in two layouts keeps its entries while someone else holds it, and loses
    /// both once only the cache does (each entry holding its own clone, they kept each other).
    #[test]
    fn a_dropped_weight_loses_all_its_layouts() {
        // An odd length, so no other test's weight shares the key.
        let len = 4099;
        let weight = FlexTensor::from_data(burn::tensor::TensorData::new(vec![1.0f32; len], [len]));
        let address = weight.as_slice::<f32>().expect("contiguous f32");
        for adjoint in [false, true] {
            let layout = Layout::Direct { adjoint };
            let first = filters(&weight, address, layout, || Dummy(len));
            let again = filters(&weight, address, layout, || Dummy(0));
            assert_eq!((first.0, again.0), (len, len), "built once, then found");
        }
        assert_eq!(entries_for(address), 2);
        release_unused();
        assert_eq!(entries_for(address), 2, "still held by `weight`");
        let storage = (address.as_ptr() as usize, len);
        drop(weight);
        release_unused();
        let cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        assert!(!cache.entries.iter().any(|e| (e.key.0, e.key.1) == storage));
        assert!(!cache.held.iter().any(|h| h.storage == storage));
    }
}
