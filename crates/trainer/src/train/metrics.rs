//! WAR, UAR, per-class recall and the confusion matrix.

use m3dfel::NUM_CLASSES;

/// Counts of (true class, predicted class).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confusion {
    /// `counts[truth][prediction]`.
    pub counts: [[u64; NUM_CLASSES]; NUM_CLASSES],
}

impl Confusion {
    pub fn add(&mut self, truth: usize, prediction: usize) {
        self.counts[truth][prediction] += 1;
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().flatten().sum()
    }

    /// Weighted average recall: overall accuracy.
    pub fn war(&self) -> f64 {
        let correct: u64 = (0..NUM_CLASSES).map(|c| self.counts[c][c]).sum();
        correct as f64 / self.total().max(1) as f64
    }

    /// Recall of each class; `None` for classes absent from the ground truth.
    pub fn per_class_recall(&self) -> [Option<f64>; NUM_CLASSES] {
        std::array::from_fn(|c| {
            let support: u64 = self.counts[c].iter().sum();
            (support > 0).then(|| self.counts[c][c] as f64 / support as f64)
        })
    }

    /// Unweighted average recall: mean recall over the classes present in the ground truth.
    pub fn uar(&self) -> f64 {
        let recalls: Vec<f64> = self.per_class_recall().into_iter().flatten().collect();
        recalls.iter().sum::<f64>() / recalls.len().max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uar_weights_classes_equally_and_ignores_absent_ones() {
        let mut m = Confusion::default();
        // 8 happy clips, all right; 2 sad clips, one right.
        (0..8).for_each(|_| m.add(0, 0));
        m.add(1, 1);
        m.add(1, 0);
        assert!((m.war() - 0.9).abs() < 1e-12);
        assert!((m.uar() - 0.75).abs() < 1e-12);
        assert_eq!(m.per_class_recall()[2], None);
    }
}
