//! `m3dfel predict --video … --plot FILE.png`: the timeline as a picture. Per-class
//! probability curves of the windows (at each window's centre) over time, the windows'
//! 3D instances underneath as segments coloured by their dominant emotion (brightness =
//! gate), a legend and the overall prediction (the class with the highest mean probability).

use std::path::Path;

use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use m3dfel::font::{draw_text, text_width};
use m3dfel::predict::argmax;
use m3dfel::timeline::WindowResult;
use m3dfel::{CLASSES, NUM_CLASSES};

/// One colour per class, in `CLASSES` order (distinct for colour-blind readers too).
pub const COLORS: [Rgb<u8>; NUM_CLASSES] = [
    Rgb([230, 159, 0]),   // happy: orange
    Rgb([0, 114, 178]),   // sad: blue
    Rgb([128, 128, 128]), // neutral: grey
    Rgb([213, 94, 0]),    // angry: vermillion
    Rgb([86, 180, 233]),  // surprise: sky blue
    Rgb([0, 158, 115]),   // disgust: green
    Rgb([204, 121, 167]), // fear: purple
];

const WIDTH: u32 = 1000;
const LEFT: u32 = 80;
const RIGHT: u32 = 30;
const CHART_TOP: u32 = 60;
const CHART_HEIGHT: u32 = 260;
const ROW_HEIGHT: u32 = 14;
const WHITE: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([30, 30, 30]);
const GRID: Rgb<u8> = Rgb([225, 225, 225]);

fn fill(image: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb<u8>) {
    for y in y0.max(0)..y1.min(image.height() as i64) {
        for x in x0.max(0)..x1.min(image.width() as i64) {
            image.put_pixel(x as u32, y as u32, color);
        }
    }
}

/// A 3-pixel-wide line.
fn line(image: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb<u8>) {
    let steps = (x1 - x0).abs().max((y1 - y0).abs()).ceil().max(1.0) as usize;
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = ((x0 + (x1 - x0) * t).round() as i64, (y0 + (y1 - y0) * t).round() as i64);
        fill(image, x - 1, y - 1, x + 2, y + 2, color);
    }
}

/// Draws the timeline of a video of `duration` seconds and writes it as PNG.
pub fn write(windows: &[&WindowResult], duration: f64, title: &str, path: &Path) -> Result<()> {
    let rows = windows.len().min(12) as u32;
    let instances_top = CHART_TOP + CHART_HEIGHT + 56;
    let legend_top = instances_top + rows * ROW_HEIGHT + 24;
    let mut image = RgbImage::from_pixel(WIDTH, legend_top + 40, WHITE);
    let plot_width = (WIDTH - LEFT - RIGHT) as f64;
    let x_of = |t: f64| LEFT as f64 + plot_width * t / duration.max(1e-9);
    let y_of = |p: f32| (CHART_TOP + CHART_HEIGHT) as f64 - CHART_HEIGHT as f64 * p as f64;

    // Title: the overall prediction.
    let mut mean = [0f32; NUM_CLASSES];
    for window in windows {
        mean.iter_mut().zip(&window.probabilities).for_each(|(m, p)| *m += p / windows.len() as f32);
    }
    let best = argmax(&mean);
    let heading = format!("{title}: {} ({:.0}% ON AVERAGE)", CLASSES[best], 100.0 * mean[best]);
    draw_text(&mut image, 10, 14, &heading, 2, INK);

    // Axes and grid: probability 0, 0.5, 1; a tick every second (or every 10 s).
    for p in [0.0, 0.5, 1.0] {
        let y = y_of(p) as i64;
        fill(&mut image, LEFT as i64, y, (WIDTH - RIGHT) as i64, y + 1, GRID);
        draw_text(&mut image, 20, y - 7, &format!("{p:.1}"), 2, INK);
    }
    let step = if duration > 20.0 { 10.0 } else { 1.0 };
    let mut t = 0.0;
    while t <= duration + 1e-9 {
        let x = x_of(t) as i64;
        fill(&mut image, x, CHART_TOP as i64, x + 1, (CHART_TOP + CHART_HEIGHT + 6) as i64, GRID);
        let label = format!("{t:.0}S");
        draw_text(&mut image, x - text_width(&label, 2) as i64 / 2, (CHART_TOP + CHART_HEIGHT + 12) as i64, &label, 2, INK);
        t += step;
    }

    // Curves: each window's probabilities at its centre.
    for (class, &color) in COLORS.iter().enumerate() {
        let points: Vec<(f64, f64)> =
            windows.iter().map(|w| (x_of((w.start + w.end) / 2.0), y_of(w.probabilities[class]))).collect();
        for pair in points.windows(2) {
            line(&mut image, pair[0], pair[1], color);
        }
        if let [only] = points.as_slice() {
            fill(&mut image, only.0 as i64 - 4, only.1 as i64 - 4, only.0 as i64 + 5, only.1 as i64 + 5, color);
        }
    }

    // Instances: one row per window (the first 12), segments coloured by class, faded by gate.
    draw_text(&mut image, 10, instances_top as i64 - 16, "3D INSTANCES OF EACH WINDOW (COLOUR: EMOTION, STRENGTH: GATE)", 1, INK);
    for (row, window) in windows.iter().take(rows as usize).enumerate() {
        let y = (instances_top + row as u32 * ROW_HEIGHT) as i64;
        for instance in &window.instances {
            let Rgb(c) = COLORS[argmax(&instance.instance.probabilities)];
            let gate = instance.instance.gate.clamp(0.0, 1.0);
            let faded = Rgb(c.map(|v| (255.0 - (255.0 - v as f32) * (0.35 + 0.65 * gate)) as u8));
            let (x0, x1) = (x_of(instance.start) as i64, x_of(instance.end) as i64);
            fill(&mut image, x0, y, x1.max(x0 + 1), y + ROW_HEIGHT as i64 - 3, faded);
        }
    }

    // Legend.
    let mut x = LEFT as i64;
    for (name, &color) in CLASSES.iter().zip(&COLORS) {
        fill(&mut image, x, legend_top as i64, x + 14, legend_top as i64 + 14, color);
        draw_text(&mut image, x + 20, legend_top as i64, name, 2, INK);
        x += 20 + text_width(name, 2) as i64 + 24;
    }
    image.save(path).with_context(|| format!("{}: cannot write the plot", path.display()))
}
