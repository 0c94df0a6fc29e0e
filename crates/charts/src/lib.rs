//! The project's pictures, drawn with [plotters]: the timeline of a video
//! ([`timeline::Timeline`], `m3dfel predict --video … --plot`), the confusion matrix of an
//! evaluation ([`confusion::ConfusionMatrix`], the trainer's `confusion.png`/`.svg`) and the
//! training curves ([`curves::Curves`], the trainer's `curves.png`/`.svg`).
//!
//! Every chart is written with [`Chart::write`]; the file extension picks the format
//! (`.png` or `.svg`, see [`Format`]). Text is set in DejaVu Sans, shipped with this crate
//! (`fonts/`), so a chart is the same, byte for byte, on every machine. Emotions have the
//! same colour in every chart ([`palette`]).
//!
//! ```
//! use charts::{Chart, Format};
//! use charts::confusion::ConfusionMatrix;
//!
//! let matrix = ConfusionMatrix {
//!     title: "test".into(),
//!     classes: vec!["happy".into(), "sad".into()],
//!     counts: vec![vec![8, 2], vec![1, 9]],
//! };
//! let svg = String::from_utf8(matrix.render(Format::Svg)?).unwrap();
//! assert!(svg.contains("happy"));
//! # Ok::<(), charts::Error>(())
//! ```

pub mod confusion;
pub mod curves;
mod font;
mod output;
pub mod palette;
pub mod timeline;

pub use output::{Chart, Format};

use std::path::PathBuf;

/// Why a chart could not be drawn or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: cannot tell which picture format to write; name the file with .png or .svg", path.display())]
    UnknownFormat { path: PathBuf },
    #[error("{}: cannot write the chart: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// The data cannot be drawn as this chart (for example, nothing to draw).
    #[error("cannot draw the {chart}: {problem}")]
    Data { chart: &'static str, problem: String },
    /// The drawing library failed (a bug rather than a problem with the data).
    #[error("cannot draw the {chart}: {message}")]
    Draw { chart: &'static str, message: String },
}
