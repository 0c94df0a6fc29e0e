//! Human-readable reports of an evaluation: the confusion matrix as text and as a PNG.

use m3dfel::font;

use std::path::Path;

use image::{Rgb, RgbImage};
use m3dfel::{CLASSES, NUM_CLASSES};

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

/// Draws the confusion matrix, each cell shaded by the share of its row, and writes a PNG.
pub fn confusion_png(confusion: &Confusion, title: &str, path: &Path) -> anyhow::Result<()> {
    const CELL: u32 = 64;
    const LEFT: u32 = 120;
    const TOP: u32 = 70;
    let side = CELL * NUM_CLASSES as u32;
    let mut image = RgbImage::from_pixel(LEFT + side + 30, TOP + side + 60, Rgb([255, 255, 255]));
    let black = Rgb([20, 20, 20]);
    font::draw_text(&mut image, 10, 12, title, 2, black);
    font::draw_text(&mut image, LEFT as i64, 44, "PREDICTED", 2, black);
    font::draw_text(&mut image, 10, (TOP + side + 30) as i64, "ROWS: TRUE CLASS", 2, black);
    for (truth, row) in confusion.counts.iter().enumerate() {
        let support = row.iter().sum::<u64>().max(1) as f32;
        let y = TOP + truth as u32 * CELL;
        font::draw_text(&mut image, 10, (y + CELL / 2 - 7) as i64, CLASSES[truth], 2, black);
        for (predicted, &count) in row.iter().enumerate() {
            let share = count as f32 / support;
            let x = LEFT + predicted as u32 * CELL;
            let shade = |full: f32| (255.0 - share * (255.0 - full)) as u8;
            let fill = Rgb([shade(30.0), shade(90.0), shade(170.0)]);
            for py in y + 1..y + CELL {
                for px in x + 1..x + CELL {
                    image.put_pixel(px, py, fill);
                }
            }
            let text = format!("{:.0}%", 100.0 * share);
            let ink = if share > 0.5 { Rgb([255, 255, 255]) } else { black };
            let width = font::text_width(&text, 2);
            font::draw_text(&mut image, (x + (CELL - width) / 2) as i64, (y + CELL / 2 - 7) as i64, &text, 2, ink);
        }
    }
    for (predicted, class) in CLASSES.iter().enumerate() {
        let short: String = class.chars().take(3).collect();
        let x = LEFT + predicted as u32 * CELL + (CELL - font::text_width(&short, 2)) / 2;
        font::draw_text(&mut image, x as i64, (TOP + side + 6) as i64, &short, 2, black);
    }
    image.save(path).map_err(|e| anyhow::anyhow!("{}: cannot write the PNG: {e}", path.display()))
}
