//! Data sets, augmentations and training.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

mod data_augment;
mod data_describe;
mod data_folder;
mod data_synth;
mod shard_partition;
mod train_loop;
mod train_parity;
