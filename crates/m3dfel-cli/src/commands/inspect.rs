use std::path::PathBuf;

use anyhow::Result;
use burn::backend::Flex;
use clap::Args;
use m3dfel::M3dfelConfig;
use m3dfel::cli_support::group_thousands;
use m3dfel::weights::WeightFile;

#[derive(Args)]
pub struct InspectArgs {
    /// A weight file (.pth, .safetensors or .bpk).
    file: PathBuf,
    /// Print the description as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> Result<()> {
    let file = WeightFile::read(&args.file)?;
    let loaded = file.inspect::<Flex>(&M3dfelConfig::new(), &Default::default())?;
    let parameters = loaded.model.num_parameters();
    let config = &loaded.config;
    if args.json {
        let description = serde_json::json!({
            "file": args.file,
            "format": loaded.format.to_string(),
            "preset": config.preset,
            "parameters": parameters,
            "bag_size": config.bag_size(),
            "config": config,
            "missing": loaded.report.missing,
            "unexpected": loaded.report.unexpected,
        });
        println!("{}", serde_json::to_string_pretty(&description)?);
        return Ok(());
    }
    println!("file:        {}", args.file.display());
    println!("format:      {}", loaded.format);
    println!("preset:      {}", config.preset);
    println!("parameters:  {}", group_thousands(parameters));
    println!(
        "backbone:    R3D-18, widths {:?}; frames {}×{}×{}",
        config.widths, config.num_frames, config.frame_size, config.frame_size
    );
    println!(
        "bag:         {} instances of {} frames",
        config.bag_size(),
        config.instance_length
    );
    println!(
        "DLIAM:       BiLSTM {} ({}×{}), MHSA {} ({} heads), DMIN {}, aggregation {:?}",
        on_off(config.ablation.lstm),
        config.lstm_layers,
        config.lstm_hidden,
        on_off(config.ablation.mhsa),
        config.num_heads,
        on_off(config.ablation.dmin),
        config.ablation.aggregation
    );
    println!("tensors:     {} loaded", loaded.report.loaded);
    print_keys("missing", &loaded.report.missing);
    print_keys("unexpected", &loaded.report.unexpected);
    Ok(())
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn print_keys(label: &str, keys: &[String]) {
    if keys.is_empty() {
        println!("{label:<12} none");
    } else {
        println!("{label:<12} {} (left at their initial values):", keys.len());
        for key in keys {
            println!("  {key}");
        }
    }
}
