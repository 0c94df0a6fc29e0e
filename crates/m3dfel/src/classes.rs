//! The seven emotion classes, in the DFEW index order used everywhere
//! (weight files, JSON, the web page).

/// Class names; index `k` is logit `k`.
pub const CLASSES: [&str; 7] = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"];

/// Number of emotion classes.
pub const NUM_CLASSES: usize = CLASSES.len();
