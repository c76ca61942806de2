//! Classification metrics for model cards: accuracy, balanced accuracy, per-class recall,
//! confusion matrix and one-vs-rest macro ROC AUC.

use serde::{Deserialize, Serialize};

/// Metrics of a classifier on one labelled set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassMetrics {
    /// Number of samples.
    pub n: usize,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Fraction of correct arg-max predictions.
    pub accuracy: f64,
    /// Mean of the per-class recalls (classes with samples).
    pub balanced_accuracy: f64,
    /// Recall of each class (`null` for a class without samples).
    pub per_class_recall: Vec<Option<f64>>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
    /// Mean over classes of the one-vs-rest ROC AUC (classes with both positives and negatives);
    /// `null` if no class qualifies.
    pub roc_auc_macro: Option<f64>,
}

/// Area under the ROC curve of `scores` for `positive` labels: the Mann–Whitney statistic
/// `P(s⁺ > s⁻) + ½·P(s⁺ = s⁻)`, computed from average ranks. `None` if one group is empty.
pub fn roc_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let n_pos = positive.iter().filter(|&&p| p).count();
    let n_neg = positive.len() - n_pos;
    if n_pos == 0 || n_neg == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum_pos = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ties share the average of ranks i+1 ..= j+1.
        let avg = (i + j + 2) as f64 / 2.0;
        for &k in &order[i..=j] {
            if positive[k] {
                rank_sum_pos += avg;
            }
        }
        i = j + 1;
    }
    let u = rank_sum_pos - (n_pos * (n_pos + 1)) as f64 / 2.0;
    Some(u / (n_pos * n_neg) as f64)
}

/// Metrics from class probabilities (`probs[i]` sums to 1) and labels.
pub fn class_metrics(probs: &[Vec<f32>], labels: &[usize], classes: usize) -> ClassMetrics {
    let n = labels.len();
    let mut confusion = vec![vec![0usize; classes]; classes];
    let mut loss = 0.0;
    for (p, &y) in probs.iter().zip(labels) {
        let pred = p
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(0, |(i, _)| i);
        confusion[y][pred] += 1;
        loss -= (p[y].max(1e-12) as f64).ln();
    }
    let correct: usize = (0..classes).map(|c| confusion[c][c]).sum();
    let per_class_recall: Vec<Option<f64>> = (0..classes)
        .map(|c| {
            let total: usize = confusion[c].iter().sum();
            (total > 0).then(|| confusion[c][c] as f64 / total as f64)
        })
        .collect();
    let recalls: Vec<f64> = per_class_recall.iter().flatten().copied().collect();
    let aucs: Vec<f64> = (0..classes)
        .filter_map(|c| {
            let scores: Vec<f64> = probs.iter().map(|p| p[c] as f64).collect();
            let pos: Vec<bool> = labels.iter().map(|&y| y == c).collect();
            roc_auc(&scores, &pos)
        })
        .collect();
    ClassMetrics {
        n,
        loss: if n > 0 { loss / n as f64 } else { 0.0 },
        accuracy: if n > 0 {
            correct as f64 / n as f64
        } else {
            0.0
        },
        balanced_accuracy: if recalls.is_empty() {
            0.0
        } else {
            recalls.iter().sum::<f64>() / recalls.len() as f64
        },
        per_class_recall,
        confusion,
        roc_auc_macro: (!aucs.is_empty()).then(|| aucs.iter().sum::<f64>() / aucs.len() as f64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_counts_ordered_pairs_and_half_ties() {
        // positives 0.9, 0.4; negatives 0.5, 0.4, 0.1 → pairs: (0.9>all)=3, (0.4>0.1)=1,
        // (0.4=0.4)=½ → 4.5/6
        let s = [0.9, 0.4, 0.5, 0.4, 0.1];
        let p = [true, true, false, false, false];
        assert!((roc_auc(&s, &p).unwrap() - 0.75).abs() < 1e-12);
        assert_eq!(roc_auc(&s, &[true; 5]), None);
    }

    #[test]
    fn balanced_accuracy_and_confusion_by_hand() {
        // 3 of class 0 (2 right), 1 of class 1 (right)
        let probs = vec![
            vec![0.9, 0.1],
            vec![0.8, 0.2],
            vec![0.3, 0.7],
            vec![0.2, 0.8],
        ];
        let m = class_metrics(&probs, &[0, 0, 0, 1], 2);
        assert_eq!(m.confusion, vec![vec![2, 1], vec![0, 1]]);
        assert!((m.accuracy - 0.75).abs() < 1e-12);
        assert!((m.balanced_accuracy - (2.0 / 3.0 + 1.0) / 2.0).abs() < 1e-12);
        let expect_loss = -(0.9f64.ln() + 0.8f64.ln() + 0.3f64.ln() + 0.8f64.ln()) / 4.0;
        assert!((m.loss - expect_loss).abs() < 1e-6);
    }
}
