//! Formats and files: a chart is drawn once, generically, on plotters' bitmap backend (then
//! encoded as PNG) or its SVG backend.

use std::path::Path;

use image::ImageEncoder;
use image::codecs::png::PngEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Error, font};

/// The picture formats a chart can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Png,
    Svg,
}

impl Format {
    /// The format a file name asks for, by its extension (`.png` or `.svg`, any case).
    ///
    /// ```
    /// use charts::Format;
    /// assert_eq!(Format::from_path("runs/curves.SVG".as_ref()).unwrap(), Format::Svg);
    /// assert!(Format::from_path("timeline.jpg".as_ref()).is_err());
    /// ```
    pub fn from_path(path: &Path) -> Result<Self, Error> {
        match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("png") => Ok(Self::Png),
            Some("svg") => Ok(Self::Svg),
            _ => Err(Error::UnknownFormat { path: path.to_path_buf() }),
        }
    }
}

pub(crate) type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

mod private {
    use super::*;

    /// How a chart draws itself on any plotters backend.
    pub trait Draw {
        /// What the chart is called in error messages ("timeline", "confusion matrix").
        const NAME: &'static str;
        /// Checks the data before drawing; the problem in words.
        fn check(&self) -> Result<(), String>;
        /// Size in pixels (the SVG's size too).
        fn size(&self) -> (u32, u32);
        fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult<DB>;
    }
}
pub(crate) use private::Draw;

/// A chart that can be written as PNG or SVG.
pub trait Chart: Draw {
    /// The chart's picture in `format`, as the bytes of a file.
    fn render(&self, format: Format) -> Result<Vec<u8>, Error> {
        self.check().map_err(|problem| Error::Data { chart: Self::NAME, problem })?;
        font::register().map_err(|message| Error::Draw { chart: Self::NAME, message })?;
        let failed = |e: &dyn std::fmt::Display| Error::Draw { chart: Self::NAME, message: e.to_string() };
        let (width, height) = self.size();
        match format {
            Format::Png => {
                let mut pixels = vec![0u8; width as usize * height as usize * 3];
                {
                    let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
                    self.draw(&root).map_err(|e| failed(&e))?;
                    root.present().map_err(|e| failed(&e))?;
                }
                let mut png = Vec::new();
                PngEncoder::new(&mut png)
                    .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
                    .map_err(|e| failed(&e))?;
                Ok(png)
            }
            Format::Svg => {
                let mut svg = String::new();
                {
                    let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
                    self.draw(&root).map_err(|e| failed(&e))?;
                    root.present().map_err(|e| failed(&e))?;
                }
                Ok(svg.into_bytes())
            }
        }
    }

    /// Writes the chart to `path`, in the format its extension names (`.png` or `.svg`).
    fn write(&self, path: &Path) -> Result<(), Error> {
        let bytes = self.render(Format::from_path(path)?)?;
        std::fs::write(path, bytes).map_err(|source| Error::Write { path: path.to_path_buf(), source })
    }
}

impl<T: Draw> Chart for T {}
