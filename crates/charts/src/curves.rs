//! The training curves (the trainer's `curves.png` and `curves.svg`, rewritten after every
//! epoch): loss, WAR and UAR of the training and test splits, and the learning rate, per
//! epoch, in four panels.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::font::text;
use crate::output::{Draw, DrawResult};
use crate::palette;

/// The curves of one training run.
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    /// What was trained, e.g. "M3DFEL on synthetic".
    pub title: String,
    /// The epochs done so far, in order.
    pub epochs: Vec<Epoch>,
}

/// The metrics of one epoch. WAR and UAR are fractions (0 to 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    /// Epoch number, from 1.
    pub epoch: usize,
    pub train_loss: f64,
    pub test_loss: f64,
    pub train_war: f64,
    pub test_war: f64,
    pub train_uar: f64,
    pub test_uar: f64,
    /// Learning rate at the end of the epoch.
    pub learning_rate: f64,
}

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 760;
const TITLE: u32 = 50;
const LEGEND: u32 = 40;

/// One line of a panel: its name, colour and value per epoch.
type Line = (&'static str, RGBColor, fn(&Epoch) -> f64);

/// One panel: a title, its y axis, and its lines.
struct Panel {
    title: &'static str,
    y_title: &'static str,
    lines: Vec<Line>,
    /// Fixed y range (WAR, UAR in %), or from 0 to above the largest value.
    range: Option<(f64, f64)>,
    /// Format of the y tick labels.
    label: fn(f64) -> String,
}

impl Curves {
    fn panels() -> [Panel; 4] {
        let percent = |v: f64| format!("{v:.0}");
        [
            Panel {
                title: "loss",
                y_title: "cross-entropy loss",
                lines: vec![("train", palette::TRAIN, |e| e.train_loss), ("test", palette::TEST, |e| e.test_loss)],
                range: None,
                label: |v| format!("{v:.2}"),
            },
            Panel {
                title: "WAR (weighted average recall = accuracy)",
                y_title: "WAR (%)",
                lines: vec![("train", palette::TRAIN, |e| 100.0 * e.train_war), ("test", palette::TEST, |e| 100.0 * e.test_war)],
                range: Some((0.0, 100.0)),
                label: percent,
            },
            Panel {
                title: "UAR (unweighted average recall, mean over classes)",
                y_title: "UAR (%)",
                lines: vec![("train", palette::TRAIN, |e| 100.0 * e.train_uar), ("test", palette::TEST, |e| 100.0 * e.test_uar)],
                range: Some((0.0, 100.0)),
                label: percent,
            },
            Panel {
                title: "learning rate (end of epoch)",
                y_title: "learning rate",
                lines: vec![("learning rate", palette::LEARNING_RATE, |e| e.learning_rate)],
                range: None,
                label: |v| if v == 0.0 { "0".into() } else { format!("{v:.1e}") },
            },
        ]
    }
}

impl Draw for Curves {
    const NAME: &'static str = "training curves";

    fn check(&self) -> Result<(), String> {
        if self.epochs.is_empty() {
            return Err("no epoch has finished yet".into());
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, HEIGHT)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&palette::PAPER)?;
        let last = self.epochs.iter().map(|e| e.epoch).max().unwrap_or(1).max(1);
        let title = format!("training curves: {} ({last} epochs)", self.title);
        let root = root.margin(8, 0, 0, 0).titled(&title, text(26.0))?;
        let (panels, legend) = root.split_vertically(HEIGHT - TITLE - LEGEND);
        for (area, panel) in panels.split_evenly((2, 2)).iter().zip(Self::panels()) {
            let values = || self.epochs.iter().flat_map(|e| panel.lines.iter().map(move |(_, _, value)| value(e))).filter(|v| v.is_finite());
            let (low, high) = panel.range.unwrap_or_else(|| {
                let high = values().fold(0.0, f64::max);
                (values().fold(0.0, f64::min), if high > 0.0 { high * 1.1 } else { 1.0 })
            });
            let mut chart = ChartBuilder::on(area)
                .caption(panel.title, text(19.0))
                .margin(10)
                .margin_left(15)
                .margin_right(25)
                .x_label_area_size(45)
                .y_label_area_size(75)
                // Epochs 1..=last, with a free column on either side.
                .build_cartesian_2d(0..last as i32 + 1, low..high)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc(panel.y_title)
                .label_style(text(15.0))
                .axis_desc_style(text(18.0))
                .axis_style(palette::INK)
                .bold_line_style(palette::GRID)
                .light_line_style(palette::PAPER)
                .x_labels(last.min(10) + 2)
                .x_label_formatter(&|&e| if e >= 1 && e <= last as i32 { e.to_string() } else { String::new() })
                .y_labels(6)
                .y_label_formatter(&|v| (panel.label)(*v))
                .draw()?;
            for &(_, color, value) in &panel.lines {
                let points: Vec<(i32, f64)> =
                    self.epochs.iter().map(|e| (e.epoch as i32, value(e))).filter(|(_, v)| v.is_finite()).collect();
                chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)))?;
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }

        // Legend of the splits (the learning-rate panel names its one line in its title).
        let style = text(18.0).pos(Pos::new(HPos::Left, VPos::Center));
        let y = LEGEND as i32 / 2;
        let mut x = WIDTH as i32 / 2 - 130;
        for (name, color) in [("training split", palette::TRAIN), ("test split", palette::TEST)] {
            legend.draw(&PathElement::new([(x, y), (x + 30, y)], color.stroke_width(3)))?;
            legend.draw(&Circle::new((x + 15, y), 3, color.filled()))?;
            legend.draw(&Text::new(name, (x + 38, y), style.clone()))?;
            x += 150;
        }
        Ok(())
    }
}
