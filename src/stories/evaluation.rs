//! Scoring a clustering against labels: pairwise precision and recall, and
//! B-cubed F1. Shared by the fixture test and the corpus evaluation so both
//! report the same figures.

use std::collections::HashMap;
use std::hash::Hash;

/// How well predicted stories agree with labelled ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusteringScores {
    pub items: usize,
    /// Pairs put in one story that are labelled as one story, over all pairs put
    /// in one story (1 when no pair was merged).
    pub pairwise_precision: f64,
    /// Pairs labelled as one story that were put in one story, over all
    /// labelled pairs (1 when there are none).
    pub pairwise_recall: f64,
    /// Labelled pairs, for telling a recall of 1 from "nothing to find".
    pub labelled_pairs: u64,
    /// Pairs merged although labelled apart.
    pub false_merges: u64,
    /// Pairs labelled together but left apart.
    pub missed_merges: u64,
    /// Harmonic mean of per-item precision and recall (Bagga and Baldwin's B³).
    pub bcubed_f1: f64,
}

/// Scores `predicted[i]` against `labels[i]` for each item; extra entries of
/// the longer slice are ignored.
pub fn score_clustering<L: Eq + Hash, P: Eq + Hash>(
    labels: &[L],
    predicted: &[P],
) -> ClusteringScores {
    let items = labels.len().min(predicted.len());
    let mut by_label: HashMap<&L, u64> = HashMap::new();
    let mut by_prediction: HashMap<&P, u64> = HashMap::new();
    let mut by_both: HashMap<(&L, &P), u64> = HashMap::new();
    for (label, prediction) in labels.iter().zip(predicted) {
        *by_label.entry(label).or_default() += 1;
        *by_prediction.entry(prediction).or_default() += 1;
        *by_both.entry((label, prediction)).or_default() += 1;
    }
    let pairs = |n: u64| n * n.saturating_sub(1) / 2;
    let agreeing: u64 = by_both.values().map(|&n| pairs(n)).sum();
    let merged: u64 = by_prediction.values().map(|&n| pairs(n)).sum();
    let labelled: u64 = by_label.values().map(|&n| pairs(n)).sum();
    let ratio = |part: u64, whole: u64| {
        if whole == 0 {
            1.0
        } else {
            part as f64 / whole as f64
        }
    };
    // B³: an item's precision is the share of its predicted story that shares
    // its label, its recall the share of its label that shares its story;
    // summed per (label, prediction) cell, each of whose n items has the same.
    let mut precision_sum = 0.0;
    let mut recall_sum = 0.0;
    for (&(label, prediction), &n) in &by_both {
        let n = n as f64;
        precision_sum += n * n / by_prediction.get(prediction).copied().unwrap_or(1) as f64;
        recall_sum += n * n / by_label.get(label).copied().unwrap_or(1) as f64;
    }
    let (bcubed_precision, bcubed_recall) = if items == 0 {
        (1.0, 1.0)
    } else {
        (precision_sum / items as f64, recall_sum / items as f64)
    };
    ClusteringScores {
        items,
        pairwise_precision: ratio(agreeing, merged),
        pairwise_recall: ratio(agreeing, labelled),
        labelled_pairs: labelled,
        false_merges: merged - agreeing,
        missed_merges: labelled - agreeing,
        bcubed_f1: 2.0 * bcubed_precision * bcubed_recall / (bcubed_precision + bcubed_recall),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_perfect_clustering_scores_one() {
        let scores = score_clustering(&["a", "a", "b"], &[7, 7, 9]);
        assert_eq!(scores.pairwise_precision, 1.0);
        assert_eq!(scores.pairwise_recall, 1.0);
        assert_eq!(scores.bcubed_f1, 1.0);
    }

    #[test]
    fn merging_everything_costs_precision_not_recall() {
        let scores = score_clustering(&["a", "a", "b", "c"], &[1, 1, 1, 1]);
        assert_eq!(scores.pairwise_recall, 1.0);
        assert!((scores.pairwise_precision - 1.0 / 6.0).abs() < 1e-9);
        assert_eq!(scores.false_merges, 5);
    }

    #[test]
    fn splitting_everything_costs_recall_not_precision() {
        let scores = score_clustering(&["a", "a", "a", "b"], &[1, 2, 3, 4]);
        assert_eq!(scores.pairwise_precision, 1.0);
        assert_eq!(scores.pairwise_recall, 0.0);
        assert_eq!(scores.missed_merges, 3);
        // B³ precision 1, recall (1/3·3 + 1)/4 = 0.5.
        assert!((scores.bcubed_f1 - 2.0 / 3.0).abs() < 1e-9);
    }
}
