//! Each chart, written as PNG and SVG: the right size, not blank, its words as text, the
//! same bytes every time, and a clear error for a file name that is neither .png nor .svg.

use std::collections::HashSet;
use std::path::PathBuf;

use charts::confusion::ConfusionMatrix;
use charts::curves::{Curves, Epoch};
use charts::timeline::{Instance, Timeline, Window};
use charts::{Chart, Error, Format};

const CLASSES: [&str; 7] = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"];
/// The Okabe–Ito colours the README promises for the emotions, in class order.
const EMOTION_RGB: [[u8; 3]; 7] =
    [[230, 159, 0], [0, 114, 178], [128, 128, 128], [213, 94, 0], [86, 180, 233], [0, 158, 115], [204, 121, 167]];

fn classes() -> Vec<String> {
    CLASSES.iter().map(|c| c.to_string()).collect()
}

/// A 3 s video in two windows (0–2 s, 1–3 s), each of four instances of 0.5 s; happy has
/// probability 0.7 then 0.52 (mean 0.61).
fn timeline(windows: usize) -> Timeline {
    let window = |w: usize| {
        let start = w as f64;
        let happy = if w.is_multiple_of(2) { 0.7 } else { 0.52 };
        let rest = (1.0 - happy) / 6.0;
        Window {
            start,
            end: start + 2.0,
            probabilities: std::iter::once(happy).chain(std::iter::repeat_n(rest, 6)).collect(),
            instances: (0..4)
                .map(|i| Instance { start: start + 0.5 * i as f64, end: start + 0.5 * (i + 1) as f64, class: (w + i) % 7, gate: 0.25 * i as f32 + 0.25 })
                .collect(),
        }
    };
    Timeline { classes: classes(), duration: windows as f64 + 1.0, windows: (0..windows).map(window).collect() }
}

/// 10 clips per class; class c is right 10 − c times and otherwise taken for the next class.
fn confusion() -> ConfusionMatrix {
    let counts = (0..7)
        .map(|truth| (0..7).map(|p| if p == truth { 10 - truth as u64 } else if p == (truth + 1) % 7 { truth as u64 } else { 0 }).collect())
        .collect();
    ConfusionMatrix { title: "test split, epoch 3: WAR 70.0 %, UAR 70.0 %".into(), classes: classes(), counts }
}

fn curves(epochs: usize) -> Curves {
    let epoch = |e: usize| {
        let t = e as f64;
        Epoch {
            epoch: e,
            train_loss: 2.0 / t,
            test_loss: 2.2 / t,
            train_war: 0.2 + 0.05 * t,
            test_war: 0.18 + 0.04 * t,
            train_uar: 0.15 + 0.05 * t,
            test_uar: 0.14 + 0.04 * t,
            learning_rate: 1e-4 * t,
        }
    };
    Curves { title: "M3DFEL on synthetic".into(), epochs: (1..=epochs).map(epoch).collect() }
}

fn png(chart: &impl Chart) -> image::RgbImage {
    let bytes = chart.render(Format::Png).unwrap();
    image::load_from_memory_with_format(&bytes, image::ImageFormat::Png).unwrap().to_rgb8()
}

fn svg(chart: &impl Chart) -> String {
    String::from_utf8(chart.render(Format::Svg).unwrap()).unwrap()
}

/// The `width` and `height` the SVG declares.
fn svg_size(svg: &str) -> (u32, u32) {
    let attribute = |name: &str| -> u32 {
        let start = svg.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        svg[start..].split('"').next().unwrap().parse().unwrap()
    };
    (attribute("width"), attribute("height"))
}

/// Whether the SVG has a text element that is exactly `words`.
fn has_text(svg: &str, words: &str) -> bool {
    svg.contains(&format!(">\n{words}\n</text>"))
}

fn distinct_colours(image: &image::RgbImage) -> usize {
    image.pixels().map(|p| p.0).collect::<HashSet<_>>().len()
}

fn pixels_of(image: &image::RgbImage, rgb: [u8; 3]) -> usize {
    image.pixels().filter(|p| p.0 == rgb).count()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("charts-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_timeline_png_is_1000_pixels_wide_and_draws_every_emotion_colour() {
    let picture = png(&timeline(2));
    assert_eq!(picture.width(), 1000);
    assert!(picture.height() > 400, "{} px high", picture.height());
    assert_eq!((picture.width(), picture.height()), svg_size(&svg(&timeline(2))));
    for rgb in EMOTION_RGB {
        let count = pixels_of(&picture, rgb);
        assert!(count > 150, "colour {rgb:?} covers {count} pixels");
    }
    assert!(distinct_colours(&picture) > 20);
}

#[test]
fn the_timeline_grows_a_row_per_window() {
    let (two, six) = (png(&timeline(2)), png(&timeline(6)));
    assert_eq!(two.width(), six.width());
    assert!(six.height() > two.height());
}

#[test]
fn a_video_of_one_window_has_one_row_labelled_with_its_span() {
    let svg = svg(&timeline(1));
    assert_eq!(svg.matches("0.0–2.0 s").count(), 1, "one row label");
    assert!(png(&timeline(1)).height() > 400);
}

#[test]
fn the_timeline_svg_names_the_prediction_the_axes_and_the_emotions() {
    let svg = svg(&timeline(2));
    for words in ["prediction: happy (61 % on average", "time (s)", "probability", "3D instances", "gate", "window", ] {
        assert!(svg.contains(words), "no {words:?} in the SVG");
    }
    for span in ["0.0–2.0 s", "1.0–3.0 s"] {
        assert_eq!(svg.matches(span).count(), 1, "one row label {span}");
    }
    for class in CLASSES {
        assert!(has_text(&svg, class), "no legend entry {class}");
    }
}

#[test]
fn the_confusion_matrix_shows_counts_shares_class_names_and_axis_titles() {
    let svg = svg(&confusion());
    for words in ["confusion matrix: test split, epoch 3", "(70 clips)", "share of the true class"] {
        assert!(svg.contains(words), "no {words:?} in the SVG");
    }
    assert!(has_text(&svg, "predicted") && has_text(&svg, "true"));
    for class in CLASSES {
        assert_eq!(svg.matches(&format!(">\n{class}\n</text>")).count(), 2, "{class} on both axes");
    }
    // Fear (class 6): 4 of 10 right, 6 taken for happy; happy: 10 of 10 right.
    for words in ["4", "6", "40 %", "60 %", "10", "100 %"] {
        assert!(has_text(&svg, words), "no cell text {words:?}");
    }
    let picture = png(&confusion());
    assert_eq!((picture.width(), picture.height()), svg_size(&svg));
    assert!(picture.width() > 600 && picture.height() > 600);
    assert!(distinct_colours(&picture) > 20);
}

#[test]
fn the_curves_show_loss_war_uar_and_learning_rate_per_epoch() {
    let svg = svg(&curves(5));
    assert!(svg.contains("training curves: M3DFEL on synthetic (5 epochs)"));
    for words in ["epoch", "cross-entropy loss", "WAR (%)", "UAR (%)", "learning rate", "training split", "test split"] {
        assert!(has_text(&svg, words), "no {words:?} in the SVG");
    }
    let picture = png(&curves(5));
    assert_eq!((picture.width(), picture.height()), svg_size(&svg));
    assert!(distinct_colours(&picture) > 20);
}

#[test]
fn a_single_epoch_is_drawn_too() {
    let picture = png(&curves(1));
    assert!(distinct_colours(&picture) > 20);
}

#[test]
fn the_same_chart_gives_the_same_bytes_twice() {
    for format in [Format::Png, Format::Svg] {
        assert_eq!(timeline(3).render(format).unwrap(), timeline(3).render(format).unwrap());
        assert_eq!(confusion().render(format).unwrap(), confusion().render(format).unwrap());
        assert_eq!(curves(4).render(format).unwrap(), curves(4).render(format).unwrap());
    }
}

#[test]
fn the_file_extension_picks_the_format() {
    for (name, magic) in [("timeline.png", &b"\x89PNG"[..]), ("timeline.SVG", &b"<svg"[..])] {
        let path = scratch(name);
        timeline(2).write(&path).unwrap();
        assert!(std::fs::read(&path).unwrap().starts_with(magic), "{name}");
    }
}

#[test]
fn another_extension_is_refused_with_the_file_name_and_the_accepted_ones() {
    for name in ["timeline.jpg", "timeline"] {
        let path = scratch(name);
        let error = timeline(2).write(&path).unwrap_err();
        assert!(matches!(error, Error::UnknownFormat { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(path.to_str().unwrap()) && message.contains(".png") && message.contains(".svg"), "{message}");
        assert!(!path.exists());
    }
}

#[test]
fn data_that_cannot_be_drawn_is_an_error_not_a_panic() {
    let empty = Timeline { windows: Vec::new(), ..timeline(1) };
    assert!(matches!(empty.render(Format::Png), Err(Error::Data { .. })));
    let mut ragged = confusion();
    ragged.counts[2].pop();
    let message = ragged.render(Format::Svg).unwrap_err().to_string();
    assert!(message.contains("confusion matrix") && message.contains("7×7"), "{message}");
    assert!(matches!(curves(0).render(Format::Png), Err(Error::Data { .. })));
}

#[test]
fn an_unwritable_path_is_an_error_naming_it() {
    let path = scratch("no-such-folder").join("curves.png");
    let message = curves(2).write(&path).unwrap_err().to_string();
    assert!(message.contains(path.to_str().unwrap()), "{message}");
}

/// `CHARTS_SAMPLES=folder cargo test -p charts`: writes every chart there, to look at.
#[test]
fn samples_for_a_person_to_look_at() {
    let Some(dir) = std::env::var_os("CHARTS_SAMPLES").map(PathBuf::from) else { return };
    std::fs::create_dir_all(&dir).unwrap();
    for ext in ["png", "svg"] {
        timeline(8).write(&dir.join(format!("timeline.{ext}"))).unwrap();
        confusion().write(&dir.join(format!("confusion.{ext}"))).unwrap();
        curves(12).write(&dir.join(format!("curves.{ext}"))).unwrap();
    }
}
