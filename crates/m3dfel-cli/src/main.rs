//! `m3dfel`: classify clips, import PyTorch checkpoints and inspect weight files.

mod backend;
mod commands;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// M3DFEL dynamic facial expression recognition (CVPR 2023): clip-level emotion over
/// 7 classes from 16-frame face clips, with a per-instance timeline.
#[derive(Parser)]
#[command(name = "m3dfel", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify clips given as a tensor file or a folder of frames.
    Predict(commands::predict::PredictArgs),
    /// Convert a PyTorch checkpoint (any of the authors' layouts or torchvision's r3d_18)
    /// to the project's format (.safetensors or Burn's .bpk).
    Import(commands::import::ImportArgs),
    /// Describe a weight file: its layout, preset, parameter count, missing or unexpected keys.
    Inspect(commands::inspect::InspectArgs),
}

/// Compute backends report an unusable device (no CUDA driver, no GPU adapter) by panicking,
/// often on a worker thread. Turn that into one readable line and a non-zero exit.
fn report_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        // The first sentence, without the long lists some backends append after " - ".
        let first_sentence = message.split(". ").next().and_then(|s| s.split(" - ").next()).unwrap_or(message);
        eprintln!(
            "error: the compute backend failed: {first_sentence} \
             (try `--device cpu`; set RUST_BACKTRACE=1 and report it if the device should work)"
        );
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(3);
    }));
}

fn main() -> ExitCode {
    report_panics_as_errors();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Predict(args) => commands::predict::run(args),
        Command::Import(args) => commands::import::run(args),
        Command::Inspect(args) => commands::inspect::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
