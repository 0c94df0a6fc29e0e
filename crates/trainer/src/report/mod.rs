//! Human-readable reports of a run: the confusion matrix as text and as a chart
//! (`confusion.png` and `confusion.svg`), and the training curves (`curves.png` and
//! `curves.svg`). The charts are drawn by the `charts` crate.

use std::path::{Path, PathBuf};

use anyhow::Context;
use charts::Chart;
use charts::confusion::ConfusionMatrix;
use charts::curves::{Curves, Epoch};
use m3dfel::CLASSES;

use crate::train::EpochMetrics;
use crate::train::metrics::Confusion;

/// The confusion matrix as a text table: rows are the true classes, columns the
/// predictions, with each row's recall.
pub fn confusion_text(confusion: &Confusion, title: &str) -> String {
    let mut out = format!("{title}\nrows: true class, columns: predicted class\n\n{:>10}", "");
    for class in CLASSES {
        out += &format!("{class:>9}");
    }
    out += "   recall\n";
    let recall = confusion.per_class_recall();
    for (truth, row) in confusion.counts.iter().enumerate() {
        out += &format!("{:>10}", CLASSES[truth]);
        for count in row {
            out += &format!("{count:>9}");
        }
        out += &match recall[truth] {
            Some(r) => format!("   {:>5.1}%\n", 100.0 * r),
            None => "       -\n".to_string(),
        };
    }
    out += &format!("\nWAR {:.2}%  UAR {:.2}%  ({} clips)\n", 100.0 * confusion.war(), 100.0 * confusion.uar(), confusion.total());
    out
}

fn class_names() -> Vec<String> {
    CLASSES.iter().map(|c| c.to_string()).collect()
}

/// Draws the confusion matrix (counts and row shares) as `confusion.png` and
/// `confusion.svg` in `folder`; returns their paths.
pub fn confusion_charts(confusion: &Confusion, title: &str, folder: &Path) -> anyhow::Result<[PathBuf; 2]> {
    let chart = ConfusionMatrix {
        title: title.into(),
        classes: class_names(),
        counts: confusion.counts.iter().map(|row| row.to_vec()).collect(),
    };
    let paths = ["png", "svg"].map(|ext| folder.join(format!("confusion.{ext}")));
    for path in &paths {
        chart.write(path).context("cannot write the confusion matrix")?;
    }
    Ok(paths)
}

/// The epochs of a run's history that have both a train and a test line, as chart points.
fn epochs(history: &[EpochMetrics]) -> Vec<Epoch> {
    let mut epochs = Vec::new();
    for train in history.iter().filter(|m| m.split == "train") {
        if let Some(test) = history.iter().find(|m| m.split == "test" && m.epoch == train.epoch) {
            epochs.push(Epoch {
                epoch: train.epoch,
                train_loss: train.loss,
                test_loss: test.loss,
                train_war: train.war,
                test_war: test.war,
                train_uar: train.uar,
                test_uar: test.uar,
                learning_rate: train.lr.unwrap_or(f64::NAN),
            });
        }
    }
    epochs
}

/// Draws the training curves of `history` (loss, WAR, UAR, learning rate per epoch) as
/// `curves.png` and `curves.svg` in `folder`; returns their paths.
pub fn curves_charts(history: &[EpochMetrics], title: &str, folder: &Path) -> anyhow::Result<[PathBuf; 2]> {
    let chart = Curves { title: title.into(), epochs: epochs(history) };
    let paths = ["png", "svg"].map(|ext| folder.join(format!("curves.{ext}")));
    for path in &paths {
        chart.write(path).context("cannot write the training curves")?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(epoch: usize, split: &str, loss: f64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            split: split.into(),
            loss,
            war: 0.5,
            uar: 0.4,
            per_class_recall: [None; m3dfel::NUM_CLASSES],
            clips: 10,
            skipped: 0,
            lr: (split == "train").then_some(1e-4 * epoch as f64),
            seconds: 1.0,
            clips_per_second: 10.0,
        }
    }

    #[test]
    fn each_epoch_of_the_history_becomes_one_point_with_its_train_and_test_lines() {
        let history = [line(1, "train", 2.0), line(1, "test", 2.5), line(2, "train", 1.0), line(2, "test", 1.5), line(3, "train", 0.5)];
        let points = epochs(&history);
        assert_eq!(points.len(), 2, "epoch 3 has no test line yet");
        assert_eq!((points[1].epoch, points[1].train_loss, points[1].test_loss), (2, 1.0, 1.5));
        assert_eq!(points[1].learning_rate, 2e-4);
    }

    #[test]
    fn the_reports_are_written_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let history = [line(1, "train", 2.0), line(1, "test", 2.5)];
        for path in curves_charts(&history, "a run", dir.path()).unwrap() {
            assert!(path.exists(), "{}", path.display());
        }
        let mut confusion = Confusion::default();
        confusion.add(0, 0);
        let [png, svg] = confusion_charts(&confusion, "a test", dir.path()).unwrap();
        assert!(std::fs::read(png).unwrap().starts_with(b"\x89PNG"));
        assert!(std::fs::read_to_string(svg).unwrap().contains("a test"));
    }
}
