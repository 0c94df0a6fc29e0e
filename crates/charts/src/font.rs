//! The one font of every chart: DejaVu Sans (see `fonts/README.md`), compiled into the
//! crate and registered with plotters once, so no system font is ever looked up.

use std::sync::OnceLock;

use plotters::style::{FontFamily, FontStyle, IntoFont, TextStyle, register_font};

use crate::palette;

/// DejaVu Sans, subset to Latin-1 and a few punctuation marks (about 22 KB).
static DEJAVU_SANS: &[u8] = include_bytes!("../fonts/DejaVuSans-subset.ttf");

/// Registers the font under plotters' sans-serif family (the family every chart uses, and the
/// family an SVG names); only the first call does any work.
pub(crate) fn register() -> Result<(), String> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            register_font(FontFamily::SansSerif.as_str(), FontStyle::Normal, DEJAVU_SANS)
                .map_err(|_| "the built-in DejaVu Sans font cannot be read".to_string())
        })
        .clone()
}

/// Text of `size` pixels in the ink colour.
pub(crate) fn text(size: f64) -> TextStyle<'static> {
    (FontFamily::SansSerif, size).into_font().color(&palette::INK)
}
