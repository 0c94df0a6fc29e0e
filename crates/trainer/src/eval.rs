//! `trainer eval`: evaluates weights alone.

use std::sync::Arc;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use m3dfel::weights::WeightFile;
use m3dfel::{CLASSES, M3dfelConfig};

use crate::with_autodiff_backend;
use crate::cli::{EvalArgs, workers};
use crate::report;
use crate::train::evaluate;

pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let spec = args.data.spec();
    let (_, test) = spec.open()?;
    let file = WeightFile::read(&args.weights)?;
    m3dfel::cli_support::advise_when_out_of_memory(match args.batch_size {
        1 => "Evaluation holds one clip at a time and it does not fit: use `--device cpu`.".to_string(),
        clips => format!("Evaluation holds --batch-size {clips} clips at once: give a smaller one, e.g. --batch-size {}.", clips / 2),
    });
    with_autodiff_backend!(args.device, |B, device_at| {
        let device = device_at(0);
        type Inner = <B as burn::tensor::backend::AutodiffBackend>::InnerBackend;
        let loaded = file.load::<Inner>(&M3dfelConfig::new(), &device)?;
        let bar = ProgressBar::new(test.entries.len() as u64);
        bar.set_style(ProgressStyle::with_template("evaluating [{bar:30}] {pos}/{len} clips, ETA {eta}")?);
        let evaluation = evaluate(&loaded.model.fold_batch_norm(), &loaded.config, Arc::from(test.entries), args.batch_size, 0.1, &device, workers(args.workers), &bar);
        bar.finish_and_clear();
        let mut metrics = evaluation.metrics(0, "test");
        metrics.skipped += test.skipped.len();
        for skipped in test.skipped.iter().chain(&evaluation.skipped) {
            eprintln!("warning: skipped {}: {}", skipped.clip, skipped.reason);
        }
        let title = format!("{} on {} test: WAR {:.1}% UAR {:.1}%", args.weights.display(), spec.name(), 100.0 * metrics.war, 100.0 * metrics.uar);
        if args.json {
            println!("{}", serde_json::to_string_pretty(&metrics)?);
        } else {
            print!("{}", report::confusion_text(&evaluation.confusion, &title));
            for (class, recall) in CLASSES.iter().zip(metrics.per_class_recall) {
                println!("  {class:>9}: {}", recall.map_or("-".into(), |r| format!("{:.1}%", 100.0 * r)));
            }
        }
        if let Some(out) = &args.out {
            std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
            std::fs::write(out.join("eval.json"), serde_json::to_string_pretty(&metrics)?)?;
            std::fs::write(out.join("confusion.txt"), report::confusion_text(&evaluation.confusion, &title))?;
            let chart_title = format!("{} test split: WAR {:.1} %, UAR {:.1} %", spec.name(), 100.0 * metrics.war, 100.0 * metrics.uar);
            report::confusion_charts(&evaluation.confusion, &chart_title, out)?;
        }
        Ok(())
    })
}
