//! What a person whose GPU cannot hold a training step is told to do: the `--accumulation`
//! that makes each micro-batch smaller while every optimizer step still sees the same clips.
//! Printed by `m3dfel::cli_support`'s panic hook when the GPU runtime reports a full memory.

use super::RunConfig;

/// The advice for `config`; `resumed`: the run continues from a checkpoint, whose batch size,
/// frame size and preset are its own.
pub fn advice(config: &RunConfig, resumed: bool) -> String {
    let (batch, accumulation, replicas) = (config.batch_size, config.accumulation, config.replicas.max(1));
    // Clips one GPU holds at once: a micro-batch, shared out over the replicas.
    let per_gpu = |accumulation: usize| (batch / accumulation).div_ceil(replicas);
    let holding = format!(
        "Each training step holds {} clips on {} at once (--batch-size {batch}, --accumulation {accumulation}{})",
        per_gpu(accumulation),
        if replicas > 1 { "each GPU" } else { "the GPU" },
        if replicas > 1 { format!(", --replicas {replicas}") } else { String::new() },
    );
    let resume = if resumed { "--resume " } else { "" };
    match (accumulation + 1..=batch).find(|&more| batch % more == 0 && per_gpu(more) < per_gpu(accumulation)) {
        Some(more) => format!(
            "{holding}: run it again with `{resume}--accumulation {more}` for {} at a time; every optimizer step still sees the same {batch} clips.",
            per_gpu(more)
        ),
        None if resumed => format!("{holding}, and one clip does not fit: continue on a GPU with more memory, or with `--resume --device cpu`."),
        None => format!("{holding}, and one clip does not fit: use a smaller --frame-size or --preset, or `--device cpu`."),
    }
}

#[cfg(test)]
mod tests {
    use super::advice;
    use crate::cli::{TrainArgs, train_config};
    use clap::Parser;

    fn config(args: &[&str]) -> super::RunConfig {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            train: TrainArgs,
        }
        train_config(&Cli::parse_from([&["trainer"], args].concat()).train).unwrap()
    }

    #[test]
    fn the_advice_names_the_next_accumulation_that_divides_the_batch() {
        let paper = config(&["--dataset", "dfew", "--root", "/data", "--device", "cpu", "--replicas", "1"]);
        assert_eq!(
            advice(&paper, false),
            "Each training step holds 256 clips on the GPU at once (--batch-size 256, --accumulation 1): \
             run it again with `--accumulation 2` for 128 at a time; every optimizer step still sees the same 256 clips."
        );
        // 48 = 2⁴·3: after 4 comes 6, not 5.
        let resumed = config(&["--batch-size", "48", "--accumulation", "4", "--device", "cpu", "--replicas", "1"]);
        assert!(advice(&resumed, true).contains("`--resume --accumulation 6` for 8 at a time"), "{}", advice(&resumed, true));
        // Two GPUs share a micro-batch: 16 / 2 = 8 each; --accumulation 2 gives 4 each.
        let two = config(&["--batch-size", "16", "--replicas", "2", "--device", "cpu"]);
        assert!(advice(&two, false).starts_with("Each training step holds 8 clips on each GPU at once"), "{}", advice(&two, false));
        assert!(advice(&two, false).contains("`--accumulation 2` for 4 at a time"));
        let single = config(&["--batch-size", "4", "--accumulation", "4", "--device", "cpu", "--replicas", "1"]);
        assert!(advice(&single, false).contains("one clip does not fit: use a smaller --frame-size"), "{}", advice(&single, false));
    }
}
