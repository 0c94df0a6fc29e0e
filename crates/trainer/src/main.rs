//! `trainer`: trains M3DFEL, evaluates weights, and writes the synthetic dataset to disk.
//!
//! With no arguments it trains the `tiny` preset on the built-in synthetic faces on the CPU
//! and reaches a high test WAR in minutes; with `--dataset dfew --root … --features cuda`
//! it runs the paper's recipe.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use trainer::cli::{EvalArgs, TrainArgs, train_config, workers};
use trainer::train::{self, Resources, Start};
use trainer::{bench, eval, synth, with_autodiff_backend};

#[derive(Parser)]
#[command(
    name = "trainer",
    version,
    about = "Train and evaluate M3DFEL (dynamic facial expression recognition).",
    long_about = "Train and evaluate M3DFEL (dynamic facial expression recognition).\n\n\
        Run without arguments to train a small model on built-in synthetic faces on the CPU \
        (a few minutes). For DFEW or FERV39K give --dataset and --root; the paper's recipe is \
        the default for them (build with --features cuda for an NVIDIA GPU).",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Train a model (the default when no command is given).
    Train(TrainArgs),
    /// Evaluate weights on a dataset's test split: WAR, UAR, per-class recall, confusion matrix.
    Eval(EvalArgs),
    /// Write the synthetic dataset to disk in DFEW's layout (JPEG frames + split CSVs).
    Synth(synth::SynthArgs),
    /// Time inference and training steps on random clips (see scripts/bench.sh).
    Bench(bench::BenchArgs),
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let config = train_config(&args)?;
    args.gpu_kernels.apply(args.device)?;
    with_autodiff_backend!(args.device, |B, device_at| {
        let kernels = trainer::kernel_cache::for_device(args.device);
        let resources =
            Resources { device_at, precision: args.precision, workers: workers(args.workers), progress: !args.quiet, kernels, kind: args.device };
        let start = if args.resume { Start::Resume { accumulation: args.accumulation } } else { Start::New };
        train::run::<B>(config, &args.out, start, resources).map(|_| ())
    })
}

fn main() -> ExitCode {
    m3dfel::cli_support::report_panics_as_errors();
    m3dfel::cli_support::keep_freed_memory();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Train(args)) => train(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Synth(args)) => synth::run(args),
        Some(Command::Bench(args)) => bench::run(args),
        None => train(cli.train),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
