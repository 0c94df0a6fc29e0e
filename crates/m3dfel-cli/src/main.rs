//! `m3dfel`: classify clips, import PyTorch checkpoints and inspect weight files.

mod backend;
mod commands;
mod ffmpeg;

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
    /// Classify clips given as a tensor file or a folder of frames, or a whole video as a timeline.
    Predict(commands::predict::PredictArgs),
    /// Convert a PyTorch checkpoint (any of the authors' layouts or torchvision's r3d_18)
    /// to the project's format (.safetensors or Burn's .bpk).
    Import(commands::import::ImportArgs),
    /// Describe a weight file: its layout, preset, parameter count, missing or unexpected keys.
    Inspect(commands::inspect::InspectArgs),
}

fn main() -> ExitCode {
    m3dfel::cli_support::report_panics_as_errors();
    m3dfel::cli_support::keep_freed_memory();
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
