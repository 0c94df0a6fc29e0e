//! `m3dfel predict --video … --plot FILE.png|FILE.svg`: the video's windows handed to the
//! timeline chart (crates/charts): probability curves, the windows' 3D instances, a legend
//! and the overall prediction.

use std::path::Path;

use anyhow::Result;
use charts::Chart;
use charts::timeline::{Instance, Timeline, Window};
use m3dfel::CLASSES;
use m3dfel::predict::argmax;
use m3dfel::timeline::WindowResult;

/// Checks, before any work, that `path` names a format the timeline can be drawn in.
pub fn check_path(path: &Path) -> Result<()> {
    charts::Format::from_path(path)?;
    Ok(())
}

/// Draws the timeline of a video of `duration` seconds and writes it to `path`.
pub fn write(windows: &[&WindowResult], duration: f64, path: &Path) -> Result<()> {
    let timeline = Timeline {
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        duration,
        windows: windows
            .iter()
            .map(|w| Window {
                start: w.start,
                end: w.end,
                probabilities: w.probabilities.clone(),
                instances: w
                    .instances
                    .iter()
                    .map(|i| Instance {
                        start: i.start,
                        end: i.end,
                        class: argmax(&i.instance.probabilities),
                        gate: i.instance.gate,
                    })
                    .collect(),
            })
            .collect(),
    };
    timeline.write(path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plot_file_that_is_neither_png_nor_svg_is_refused_naming_it() {
        let message = check_path(Path::new("out/timeline.jpg")).unwrap_err().to_string();
        assert!(message.contains("out/timeline.jpg") && message.contains(".png") && message.contains(".svg"), "{message}");
        assert!(check_path(Path::new("timeline.svg")).is_ok() && check_path(Path::new("timeline.PNG")).is_ok());
    }
}
