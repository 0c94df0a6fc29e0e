//! The timeline of a video (`m3dfel predict --video … --plot`): above, the probability of
//! each emotion over time, one line per emotion through the windows' centres; below, the
//! windows' 3D instances on the same time axis, one row per window, coloured by the
//! emotion each instance predicts, more opaque the higher its gate; a legend under both.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::font::text;
use crate::output::{Draw, DrawResult};
use crate::palette;

/// The timeline of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Class names, in class order (their colours are [`palette::emotion`]).
    pub classes: Vec<String>,
    /// Length of the video in seconds.
    pub duration: f64,
    /// The windows the video was classified in, in time order.
    pub windows: Vec<Window>,
}

/// One window of the video and its classification.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// Span in seconds.
    pub start: f64,
    pub end: f64,
    /// Probability of each class, in class order.
    pub probabilities: Vec<f32>,
    pub instances: Vec<Instance>,
}

/// One 3D instance of a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// Span in seconds.
    pub start: f64,
    pub end: f64,
    /// The class the instance predicts.
    pub class: usize,
    /// How much the instance counts in the window's prediction, 0 to 1.
    pub gate: f32,
}

const WIDTH: u32 = 1000;
const TITLE: u32 = 50;
const CURVES: u32 = 330;
const ROW: u32 = 18;
/// Instance rows drawn at most (the first windows); the panel says when there are more.
const MAX_ROWS: usize = 30;
const INSTANCES_FRAME: u32 = 100;
const LEGEND: u32 = 50;
/// Width of the area left of both panels (tick labels and axis title), so they line up.
const Y_LABELS: u32 = 115;

impl Timeline {
    /// Mean probability of each class over the windows.
    pub fn mean_probabilities(&self) -> Vec<f64> {
        let mut mean = vec![0.0; self.classes.len()];
        for window in &self.windows {
            for (m, &p) in mean.iter_mut().zip(&window.probabilities) {
                *m += p as f64 / self.windows.len() as f64;
            }
        }
        mean
    }

    /// The overall prediction: the class with the highest mean probability, and that mean.
    pub fn prediction(&self) -> (usize, f64) {
        let mean = self.mean_probabilities();
        let best = (0..mean.len()).fold(0, |best, c| if mean[c] > mean[best] { c } else { best });
        (best, mean.get(best).copied().unwrap_or(0.0))
    }

    /// The chart's title: the overall prediction.
    pub fn title(&self) -> String {
        let (best, mean) = self.prediction();
        let class = self.classes.get(best).map_or("?", String::as_str);
        format!("prediction: {class} ({:.0} % on average over {} windows)", 100.0 * mean, self.windows.len())
    }

    fn rows(&self) -> usize {
        self.windows.len().min(MAX_ROWS)
    }

    /// The time axis: the video, or the windows if they reach further.
    fn span(&self) -> f64 {
        let end = self.windows.iter().map(|w| w.end).fold(self.duration, f64::max);
        if end > 0.0 { end } else { 1.0 }
    }
}

/// The y axis of the instance panel: window r is the band [r, r + 1] counted from the top,
/// labelled with its span (seconds) at its centre.
struct WindowRows(Vec<(f64, f64)>);

impl Ranged for WindowRows {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, (bottom, top): (i32, i32)) -> i32 {
        top + ((bottom - top) as f64 * value / self.0.len() as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        let step = self.0.len().div_ceil(hint.max_num_points().max(1)).max(1);
        (0..self.0.len()).step_by(step).map(|row| row as f64 + 0.5).collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        0.0..self.0.len() as f64
    }
}

impl ValueFormatter<f64> for WindowRows {
    fn format_ext(&self, value: &f64) -> String {
        self.0.get(value.floor().max(0.0) as usize).map_or(String::new(), |(start, end)| format!("{start:.1}–{end:.1} s"))
    }
}

impl Draw for Timeline {
    const NAME: &'static str = "timeline";

    fn check(&self) -> Result<(), String> {
        if self.windows.is_empty() {
            return Err("the video has no classified window".into());
        }
        if self.classes.is_empty() {
            return Err("no class names".into());
        }
        for window in &self.windows {
            if window.probabilities.len() != self.classes.len() {
                return Err(format!(
                    "the window at {:.2}–{:.2} s has {} probabilities for {} classes",
                    window.start, window.end, window.probabilities.len(), self.classes.len()
                ));
            }
            if let Some(instance) = window.instances.iter().find(|i| i.class >= self.classes.len()) {
                return Err(format!("an instance at {:.2} s predicts class {}, but there are {} classes", instance.start, instance.class, self.classes.len()));
            }
        }
        Ok(())
    }

    fn size(&self) -> (u32, u32) {
        (WIDTH, TITLE + CURVES + INSTANCES_FRAME + self.rows() as u32 * ROW + LEGEND)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB> {
        root.fill(&palette::PAPER)?;
        let root = root.margin(8, 0, 0, 0).titled(&self.title(), text(26.0))?;
        let (top, rest) = root.split_vertically(CURVES);
        let (bottom, legend) = rest.split_vertically(INSTANCES_FRAME + self.rows() as u32 * ROW);
        let span = self.span();

        // Probabilities over time.
        let mut chart = ChartBuilder::on(&top)
            .margin_left(10)
            .margin_right(30)
            .margin_top(10)
            .x_label_area_size(50)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(0.0..span, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("probability")
            .label_style(text(16.0))
            .axis_desc_style(text(19.0))
            .axis_style(palette::INK)
            .bold_line_style(palette::GRID)
            .light_line_style(palette::PAPER)
            .y_labels(6)
            .x_label_formatter(&|t| format!("{t}"))
            .draw()?;
        for class in 0..self.classes.len() {
            let color = palette::emotion(class);
            let points: Vec<(f64, f64)> =
                self.windows.iter().map(|w| ((w.start + w.end) / 2.0, w.probabilities[class] as f64)).collect();
            chart.draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(3)))?;
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
        }

        // The instances of each window on the same time axis.
        let rows = self.rows();
        let more = match self.windows.len() - rows {
            0 => String::new(),
            hidden => format!(", first {rows} of {} windows", rows + hidden),
        };
        let caption = format!("3D instances of each window (colour: predicted emotion, opacity: gate 0–1{more})");
        let mut chart = ChartBuilder::on(&bottom)
            .margin_left(10)
            .margin_right(30)
            .margin_top(10)
            .caption(caption, text(19.0))
            .x_label_area_size(50)
            .y_label_area_size(Y_LABELS)
            .build_cartesian_2d(0.0..span, WindowRows(self.windows[..rows].iter().map(|w| (w.start, w.end)).collect()))?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("window (time span)")
            .label_style(text(14.0))
            .axis_desc_style(text(19.0))
            .axis_style(palette::INK)
            .disable_y_mesh()
            .bold_line_style(palette::GRID)
            .light_line_style(palette::PAPER)
            .x_label_formatter(&|t| format!("{t}"))
            .y_labels(rows)
            .draw()?;
        for (row, window) in self.windows.iter().take(rows).enumerate() {
            let (y0, y1) = (row as f64 + 0.12, row as f64 + 0.88);
            chart.draw_series(window.instances.iter().map(|instance| {
                let opacity = 0.15 + 0.85 * instance.gate.clamp(0.0, 1.0) as f64;
                let color = palette::emotion(instance.class).mix(opacity).filled();
                let mut bar = Rectangle::new([(instance.start, y0), (instance.end, y1)], color);
                bar.set_margin(0, 0, 0, 1);
                bar
            }))?;
        }

        // Legend: colour → emotion, centred under the panels.
        let swatch = (28, 14);
        let gap = 24;
        let style = text(18.0).pos(Pos::new(HPos::Left, VPos::Center));
        let widths: Vec<i32> = self
            .classes
            .iter()
            .map(|name| legend.estimate_text_size(name, &style).map(|(w, _)| w as i32))
            .collect::<Result<_, _>>()?;
        let total: i32 = widths.iter().map(|w| swatch.0 + 8 + w).sum::<i32>() + gap * (widths.len() as i32 - 1);
        let mut x = (WIDTH as i32 - total) / 2;
        let y = LEGEND as i32 / 2;
        for (class, name) in self.classes.iter().enumerate() {
            let color = palette::emotion(class);
            legend.draw(&Rectangle::new([(x, y - swatch.1 / 2), (x + swatch.0, y + swatch.1 / 2)], color.filled()))?;
            legend.draw(&Text::new(name.as_str(), (x + swatch.0 + 8, y), style.clone()))?;
            x += swatch.0 + 8 + widths[class] + gap;
        }
        Ok(())
    }
}
