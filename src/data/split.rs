//! Deterministic stratified train/validation/test splits: every class is split in the same
//! proportions, and the same seed always gives the same split.

use serde::{Deserialize, Serialize};

use super::DataError;
use crate::rng::Rng;

/// Fractions of each class that go to validation and test (the rest is training data).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitFractions {
    /// Share of each class held out for validation (early stopping, model selection).
    pub val: f64,
    /// Share of each class held out for the final test.
    pub test: f64,
}

impl Default for SplitFractions {
    fn default() -> Self {
        SplitFractions {
            val: 0.15,
            test: 0.15,
        }
    }
}

impl SplitFractions {
    /// Checks `0 ≤ val, test` and `val + test < 1`.
    pub fn check(&self) -> Result<(), DataError> {
        if !(self.val >= 0.0 && self.test >= 0.0 && self.val + self.test < 1.0) {
            return Err(DataError::Invalid(format!(
                "split fractions val={} test={} must be ≥ 0 and leave something to train on",
                self.val, self.test
            )));
        }
        Ok(())
    }
}

/// Sample indices of the three parts of a split, each sorted ascending.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Training indices.
    pub train: Vec<usize>,
    /// Validation indices.
    pub val: Vec<usize>,
    /// Test indices.
    pub test: Vec<usize>,
}

/// Splits samples with the given `labels` class by class: within each class the indices are
/// shuffled with a stream derived from `seed`, the first `round(n·test)` go to test, the next
/// `round(n·val)` to validation and the rest to training. Classes with at least three samples
/// keep at least one training sample and, when the fraction is positive, one validation and
/// one test sample.
pub fn stratified_split(labels: &[usize], fractions: SplitFractions, seed: u64) -> Split {
    let classes = labels.iter().copied().max().map_or(0, |m| m + 1);
    let mut split = Split::default();
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if members.is_empty() {
            continue;
        }
        let mut rng = Rng::derive(seed, &format!("split/class{class}"));
        rng.shuffle(&mut members);
        let n = members.len();
        let mut n_test = (n as f64 * fractions.test).round() as usize;
        let mut n_val = (n as f64 * fractions.val).round() as usize;
        if n >= 3 {
            if fractions.test > 0.0 {
                n_test = n_test.max(1);
            }
            if fractions.val > 0.0 {
                n_val = n_val.max(1);
            }
        }
        // Always leave one training sample.
        while n_test + n_val >= n && n_test + n_val > 0 {
            if n_val >= n_test && n_val > 0 {
                n_val -= 1;
            } else {
                n_test -= 1;
            }
        }
        split.test.extend_from_slice(&members[..n_test]);
        split
            .val
            .extend_from_slice(&members[n_test..n_test + n_val]);
        split.train.extend_from_slice(&members[n_test + n_val..]);
    }
    split.train.sort_unstable();
    split.val.sort_unstable();
    split.test.sort_unstable();
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_is_a_stratified_partition_and_depends_only_on_the_seed() {
        let labels: Vec<usize> = (0..200).map(|i| if i % 4 == 0 { 1 } else { 0 }).collect();
        let f = SplitFractions {
            val: 0.1,
            test: 0.2,
        };
        let s = stratified_split(&labels, f, 3);
        let mut all: Vec<usize> = [s.train.clone(), s.val.clone(), s.test.clone()].concat();
        all.sort_unstable();
        assert_eq!(all, (0..200).collect::<Vec<_>>());
        let count = |idx: &[usize], c: usize| idx.iter().filter(|&&i| labels[i] == c).count();
        // class 0: 150 samples → 30 test, 15 val; class 1: 50 → 10 test, 5 val
        assert_eq!((count(&s.test, 0), count(&s.val, 0)), (30, 15));
        assert_eq!((count(&s.test, 1), count(&s.val, 1)), (10, 5));
        assert_eq!(s, stratified_split(&labels, f, 3));
        assert_ne!(s.test, stratified_split(&labels, f, 4).test);
    }

    #[test]
    fn tiny_classes_keep_a_training_sample() {
        let labels = vec![0, 0, 0, 1, 1];
        let s = stratified_split(&labels, SplitFractions::default(), 0);
        assert!(s.train.iter().any(|&i| labels[i] == 0));
        assert!(s.train.iter().any(|&i| labels[i] == 1));
        assert_eq!(s.train.len() + s.val.len() + s.test.len(), 5);
    }
}
