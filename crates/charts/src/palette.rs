//! Every colour of the charts. Emotions are coloured in class order (the order of
//! `m3dfel::CLASSES`: happy, sad, neutral, angry, surprise, disgust, fear) with the
//! Okabe–Ito colours, which colour-blind readers can tell apart too.

use plotters::style::RGBColor;

/// One colour per emotion class, in class order.
pub const EMOTIONS: [RGBColor; 7] = [
    RGBColor(230, 159, 0),   // happy: orange
    RGBColor(0, 114, 178),   // sad: blue
    RGBColor(128, 128, 128), // neutral: grey
    RGBColor(213, 94, 0),    // angry: vermillion
    RGBColor(86, 180, 233),  // surprise: sky blue
    RGBColor(0, 158, 115),   // disgust: green
    RGBColor(204, 121, 167), // fear: purple
];

/// The colour of class `class` (colours repeat after the seventh class).
pub fn emotion(class: usize) -> RGBColor {
    EMOTIONS[class % EMOTIONS.len()]
}

/// Text, axes and outlines.
pub const INK: RGBColor = RGBColor(30, 30, 30);
/// Background.
pub const PAPER: RGBColor = RGBColor(255, 255, 255);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(225, 225, 225);
/// Training split in the training curves.
pub const TRAIN: RGBColor = RGBColor(0, 114, 178);
/// Test split in the training curves.
pub const TEST: RGBColor = RGBColor(213, 94, 0);
/// The learning rate in the training curves.
pub const LEARNING_RATE: RGBColor = RGBColor(0, 158, 115);

/// The confusion matrix's colour scale, from share 0 (white) to share 1 (dark blue).
pub fn share(share: f64) -> RGBColor {
    let (low, high) = ([255.0, 255.0, 255.0], [8.0, 48.0, 107.0]);
    let t = share.clamp(0.0, 1.0);
    let mix = |i: usize| (low[i] + (high[i] - low[i]) * t).round() as u8;
    RGBColor(mix(0), mix(1), mix(2))
}
