use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::backend::Flex;
use clap::Args;
use m3dfel::M3dfelConfig;
use m3dfel::weights::{Precision, WeightFile, WeightFormat, save_burnpack, save_safetensors};

#[derive(Args)]
pub struct ImportArgs {
    /// The PyTorch checkpoint (state_dict, training checkpoint or torchvision r3d_18).
    input: PathBuf,
    /// Output file: `.safetensors` (the project's format) or `.bpk` (Burn's burnpack).
    #[arg(short, long)]
    output: PathBuf,
    /// Store half-precision values (safetensors only; widened to f32 on load).
    #[arg(long)]
    f16: bool,
    /// Preset for the parts a backbone-only file (torchvision r3d_18) lacks.
    #[arg(long, default_value = "paper")]
    preset: String,
}

pub fn run(args: ImportArgs) -> Result<()> {
    let fallback = M3dfelConfig::named(&args.preset).context("--preset")?;
    eprintln!("reading {} …", args.input.display());
    let file = WeightFile::read(&args.input)?;
    let loaded = file.load::<Flex>(&fallback, &Default::default())?;
    let extension = args.output.extension().and_then(|e| e.to_str()).unwrap_or("");
    match (extension, args.f16) {
        ("safetensors", f16) => {
            let precision = if f16 { Precision::F16 } else { Precision::F32 };
            save_safetensors(&loaded.model, &loaded.config, precision, &args.output)?
        }
        ("bpk", false) => save_burnpack(&loaded.model, &loaded.config, &args.output)?,
        ("bpk", true) => bail!("--f16 is only available for .safetensors outputs"),
        _ => bail!(
            "{}: choose an output ending in .safetensors or .bpk",
            args.output.display()
        ),
    }
    eprintln!(
        "imported {} ({}, preset {}, {} tensors) → {}",
        args.input.display(),
        loaded.format,
        loaded.config.preset,
        loaded.report.loaded,
        args.output.display()
    );
    if loaded.format == WeightFormat::TorchvisionR3d18 {
        eprintln!(
            "note: only the backbone came from the file; DLIAM and the classifier are newly \
             initialised ({} tensors) and need training",
            loaded.report.missing.len()
        );
    }
    Ok(())
}
