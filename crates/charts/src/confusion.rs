//! The confusion matrix of an evaluation (the trainer's `confusion.png` and `confusion.svg`):
//! one row per true class, one column per predicted class; each cell shows its count of
//! clips and its share of the row, and is shaded by that share (colour scale on the right).

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::font::text;
use crate::output::{Draw, DrawResult};
use crate::palette;

/// A confusion matrix to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfusionMatrix {
    /// What was evaluated, e.g. "test split, epoch 12: WAR 61.0 %, UAR 55.2 %".
    pub title: String,
    /// Class names, in class order.
    pub classes: Vec<String>,
    /// `counts[true class][predicted class]`: clips.
    pub counts: Vec<Vec<u64>>,
}

const CELL: i32 = 80;
const TITLE: i32 = 60;
const LEFT: i32 = 150;
const BOTTOM: i32 = 80;
const SCALE: i32 = 150;

impl ConfusionMatrix {
    fn side(&self) -> i32 {
        CELL * self.classes.len() as i32
    }
}

/// `anchor`ed text.
fn at(style: &TextStyle<'static>, h: HPos, v: VPos) -> TextStyle<'static> {
    style.pos(Pos::new(h, v))
}

impl Draw for ConfusionMatrix {
    const NAME: &'static str = "confusion matrix";

    fn check(&self) -> Result<(), String> {
        if self.classes.is_empty() {
            return Err("no class names".into());
        }
        if self.counts.len() != self.classes.len() || self.counts.iter().any(|row| row.len() != self.classes.len()) {
            return Err(format!("the counts are not a {0}×{0} table, one row and column per class", self.classes.len()));
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        ((LEFT + self.side() + SCALE) as u32, (TITLE + self.side() + BOTTOM) as u32)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&palette::PAPER)?;
        let (width, _) = self.size();
        let side = self.side();
        let total: u64 = self.counts.iter().flatten().sum();
        root.draw(&Text::new(
            format!("confusion matrix: {} ({total} clips)", self.title),
            (width as i32 / 2, TITLE / 2),
            at(&text(22.0), HPos::Center, VPos::Center),
        ))?;

        // Cells: count and share of the row.
        for (truth, row) in self.counts.iter().enumerate() {
            let support: u64 = row.iter().sum();
            let y = TITLE + truth as i32 * CELL;
            for (predicted, &count) in row.iter().enumerate() {
                let x = LEFT + predicted as i32 * CELL;
                let share = if support > 0 { count as f64 / support as f64 } else { 0.0 };
                root.draw(&Rectangle::new([(x, y), (x + CELL, y + CELL)], palette::share(share).filled()))?;
                let ink = if share > 0.5 { &palette::PAPER } else { &palette::INK };
                let centre = (x + CELL / 2, y + CELL / 2);
                root.draw(&Text::new(count.to_string(), (centre.0, centre.1 - 10), at(&text(21.0).color(ink), HPos::Center, VPos::Center)))?;
                let share = if support > 0 { format!("{:.0} %", 100.0 * share) } else { "–".into() };
                root.draw(&Text::new(share, (centre.0, centre.1 + 13), at(&text(15.0).color(ink), HPos::Center, VPos::Center)))?;
            }
        }
        for i in 0..=self.classes.len() as i32 {
            root.draw(&PathElement::new([(LEFT, TITLE + i * CELL), (LEFT + side, TITLE + i * CELL)], palette::GRID))?;
            root.draw(&PathElement::new([(LEFT + i * CELL, TITLE), (LEFT + i * CELL, TITLE + side)], palette::GRID))?;
        }
        root.draw(&Rectangle::new([(LEFT, TITLE), (LEFT + side, TITLE + side)], palette::INK))?;

        // Class names and axis titles.
        let label = text(18.0);
        for (i, class) in self.classes.iter().enumerate() {
            let middle = i as i32 * CELL + CELL / 2;
            root.draw(&Text::new(class.as_str(), (LEFT - 10, TITLE + middle), at(&label, HPos::Right, VPos::Center)))?;
            root.draw(&Text::new(class.as_str(), (LEFT + middle, TITLE + side + 10), at(&label, HPos::Center, VPos::Top)))?;
        }
        let axis = text(20.0);
        root.draw(&Text::new("predicted", (LEFT + side / 2, TITLE + side + 45), at(&axis, HPos::Center, VPos::Top)))?;
        root.draw(&Text::new("true", (25, TITLE + side / 2), at(&axis, HPos::Center, VPos::Center).transform(FontTransform::Rotate270)))?;

        // Colour scale: share of the true class's clips, 0 to 100 %.
        let (x0, x1) = (LEFT + side + 30, LEFT + side + 50);
        for step in 0..side {
            let share = 1.0 - step as f64 / (side - 1).max(1) as f64;
            root.draw(&Rectangle::new([(x0, TITLE + step), (x1, TITLE + step + 1)], palette::share(share).filled()))?;
        }
        root.draw(&Rectangle::new([(x0, TITLE), (x1, TITLE + side)], palette::INK))?;
        for percent in [0, 25, 50, 75, 100] {
            let y = TITLE + side - side * percent / 100;
            root.draw(&PathElement::new([(x1, y), (x1 + 5, y)], palette::INK))?;
            root.draw(&Text::new(format!("{percent} %"), (x1 + 8, y), at(&text(15.0), HPos::Left, VPos::Center)))?;
        }
        root.draw(&Text::new(
            "share of the true class (row)",
            (x1 + 75, TITLE + side / 2),
            at(&text(18.0), HPos::Center, VPos::Center).transform(FontTransform::Rotate90),
        ))?;
        Ok(())
    }
}
