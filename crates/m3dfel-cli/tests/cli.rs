//! The `m3dfel` program end to end, on the parity fixtures written by
//! `tests/parity/make_fixtures.py` (see `scripts/test.sh`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use m3dfel::npy::NpyArray;
use serde_json::Value;

fn fixtures() -> PathBuf {
    m3dfel::testing::parity_fixtures()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("m3dfel-cli-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn m3dfel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m3dfel")).args(args).output().expect("m3dfel runs")
}

fn stdout_json(output: &Output) -> Value {
    assert!(output.status.success(), "m3dfel failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn floats(value: &Value) -> Vec<f32> {
    value.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect()
}

/// Bag logits of every clip, and instance logits, compared to the reference within 1e-4.
fn assert_matches_reference(json: &Value, case: &Path) {
    let reference = NpyArray::read(case.join("logits.npy")).unwrap().values;
    let instances = NpyArray::read(case.join("instance_logits.npy")).unwrap().values;
    let clips = json["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 2);
    let ours: Vec<f32> = clips.iter().flat_map(|c| floats(&c["logits"])).collect();
    let ours_instances: Vec<f32> = clips
        .iter()
        .flat_map(|c| c["instances"].as_array().unwrap().iter().flat_map(|i| floats(&i["logits"])).collect::<Vec<_>>())
        .collect();
    for (ours, reference) in [(ours, reference), (ours_instances, instances)] {
        let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
        let error = ours.iter().zip(&reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(error <= 1e-4 * scale, "max error {error} vs scale {scale}");
    }
}

#[test]
fn predict_json_gives_the_reference_logits_for_both_checkpoint_layouts() {
    let case = fixtures().join("paper");
    for weights in ["state_dict.pth", "checkpoint.pth"] {
        let output = m3dfel(&[
            "predict",
            "--weights",
            case.join(weights).to_str().unwrap(),
            "--tensor",
            case.join("clips.npy").to_str().unwrap(),
            "--json",
        ]);
        let json = stdout_json(&output);
        assert_eq!(json["classes"][0], "happy");
        assert_eq!(json["classes"][6], "fear");
        let clip = &json["clips"][0];
        let probabilities = floats(&clip["probabilities"]);
        assert!((probabilities.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(clip["instances"].as_array().unwrap().len(), 4);
        assert_eq!(clip["instances"][1]["frames"], serde_json::json!([4, 7]));
        assert!(clip["instances"][1]["gate"].as_f64().unwrap() > 0.0);
        assert!(json["clips"][0]["prediction"].is_string());
        assert_matches_reference(&json, &case);
    }
}

#[test]
fn an_imported_checkpoint_predicts_the_same_and_inspects_as_the_paper_preset() {
    let case = fixtures().join("paper");
    let imported = scratch("imported.safetensors");
    let output = m3dfel(&["import", case.join("checkpoint.pth").to_str().unwrap(), "-o", imported.to_str().unwrap()]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let inspect = stdout_json(&m3dfel(&["inspect", imported.to_str().unwrap(), "--json"]));
    assert_eq!(inspect["preset"], "paper");
    assert_eq!(inspect["parameters"], 46_823_384);
    let text = m3dfel(&["inspect", case.join("state_dict.pth").to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&text.stdout).contains("46,823,384"));

    let output = m3dfel(&[
        "predict",
        "--weights",
        imported.to_str().unwrap(),
        "--tensor",
        case.join("clips.npy").to_str().unwrap(),
        "--json",
    ]);
    assert_matches_reference(&stdout_json(&output), &case);
}

#[test]
fn torchvision_backbones_import_with_the_missing_parts_listed() {
    let case = fixtures().join("paper");
    let inspect = stdout_json(&m3dfel(&["inspect", case.join("r3d_18.pth").to_str().unwrap(), "--json"]));
    assert_eq!(inspect["format"], "torchvision r3d_18 backbone (.pth)");
    let missing: Vec<&str> = inspect["missing"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(missing.contains(&"fc.weight") && missing.contains(&"to_qkv.weight"));
    assert!(missing.iter().all(|k| !k.starts_with("features.")));
}

/// One line on stderr starting with "error:", naming the file, non-zero exit, no panic.
fn assert_clear_failure(output: &Output, file: &Path, topic: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected failure for {}", file.display());
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("note:") && !l.starts_with("reading")).collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    assert!(lines[0].contains(&*file.display().to_string()), "{stderr}");
    assert!(lines[0].contains(topic), "expected '{topic}' in: {stderr}");
}

#[test]
fn bad_weight_files_fail_with_one_clear_line_each() {
    let root = fixtures();
    let truncated = scratch("truncated.pth");
    let full = std::fs::read(root.join("paper/state_dict.pth")).unwrap();
    std::fs::write(&truncated, &full[..full.len() / 3]).unwrap();
    let random = scratch("random.pth");
    std::fs::write(&random, (0..65536u32).map(|i| (i.wrapping_mul(2654435761) >> 11) as u8 | 1).collect::<Vec<_>>())
        .unwrap();
    let cases = [
        (truncated, "damaged or truncated"),
        (root.join("bad/wrong_shape.pth"), "has shape [3072, 1000]"),
        (root.join("bad/not_m3dfel.pth"), "not an M3DFEL checkpoint"),
        (random, "not a weight file"),
    ];
    let clips = root.join("paper/clips.npy");
    for (file, topic) in &cases {
        for args in [
            vec!["inspect", file.to_str().unwrap()],
            vec!["predict", "--weights", file.to_str().unwrap(), "--tensor", clips.to_str().unwrap()],
        ] {
            assert_clear_failure(&m3dfel(&args), file, topic);
        }
    }
}

#[test]
fn clips_of_the_wrong_length_or_with_nan_are_refused() {
    let root = fixtures();
    let weights = root.join("paper/state_dict.pth");
    let short = scratch("short.npy");
    NpyArray { shape: vec![15, 3, 32, 32], values: vec![0.5; 15 * 3 * 32 * 32] }.write(&short).unwrap();
    let output = m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--tensor", short.to_str().unwrap()]);
    assert_clear_failure(&output, &short, "must have 16 frames");

    let nan = scratch("nan.npy");
    let mut values = vec![0.5; 16 * 3 * 32 * 32];
    values[100] = f32::NAN;
    NpyArray { shape: vec![16, 3, 32, 32], values }.write(&nan).unwrap();
    let output = m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--tensor", nan.to_str().unwrap()]);
    assert_clear_failure(&output, &nan, "NaN");
}

#[test]
fn clips_of_0_to_255_values_are_classified_with_a_warning_naming_the_range() {
    let weights = tiny_weights("tiny-range.safetensors");
    let (bytes, plain) = (scratch("bytes.npy"), scratch("plain.npy"));
    let values: Vec<f32> = (0..16 * 3 * 32 * 32).map(|i| (i % 256) as f32).collect();
    NpyArray { shape: vec![16, 3, 32, 32], values: values.clone() }.write(&bytes).unwrap();
    NpyArray { shape: vec![16, 3, 32, 32], values: values.iter().map(|v| v / 255.0).collect() }.write(&plain).unwrap();
    for (file, warned) in [(&bytes, true), (&plain, false)] {
        let output = m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--tensor", file.to_str().unwrap(), "--json"]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stderr = String::from_utf8_lossy(&output.stderr);
        let warning = format!(
            "warning: {}: the values range from 0 to 255, but the model expects pixel / 255, in [0, 1]: for 0–255 data, divide by 255",
            file.display()
        );
        assert_eq!(stderr.contains(&warning), warned, "{stderr}");
    }
}

/// A tiny random model in the project's format, for tests that need any weights.
fn tiny_weights(name: &str) -> PathBuf {
    use burn::backend::Flex;
    let path = scratch(name);
    let config = m3dfel::M3dfelConfig::preset("tiny").unwrap();
    let model: m3dfel::M3dfel<Flex> = config.init(&Default::default());
    m3dfel::weights::save_safetensors(&model, &config, m3dfel::weights::Precision::F32, &path).unwrap();
    path
}

/// A folder of `count` moving-gradient PNG frames of 80×60 pixels.
fn frame_folder(name: &str, count: u32) -> PathBuf {
    let dir = scratch(name);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..count {
        let frame = image::RgbImage::from_fn(80, 60, |x, y| image::Rgb([(x * 3 + i * 7) as u8, (y * 4) as u8, (i * 13) as u8]));
        frame.save(dir.join(format!("{i:05}.png"))).unwrap();
    }
    dir
}

#[test]
fn a_folder_of_frames_is_sampled_resized_and_classified_deterministically() {
    let weights = tiny_weights("tiny-a.safetensors");
    let frames = frame_folder("frames20", 20);
    let args = ["predict", "--weights", weights.to_str().unwrap(), "--frames", frames.to_str().unwrap(), "--json"];
    let first = stdout_json(&m3dfel(&args));
    let clips = first["clips"].as_array().unwrap();
    assert_eq!(clips.len(), 1);
    assert_eq!(clips[0]["instances"].as_array().unwrap().len(), 4);
    assert!((floats(&clips[0]["probabilities"]).iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(first, stdout_json(&m3dfel(&args)), "the same frames must give the same numbers");

    let table = m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--frames", frames.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("clip 0:") && text.contains("frames 12-15"), "{text}");
}

#[test]
fn a_clip_shorter_than_16_frames_is_padded_and_says_so() {
    let weights = tiny_weights("tiny-b.safetensors");
    let frames = frame_folder("frames10", 10);
    let output = m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--frames", frames.to_str().unwrap(), "--json"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only 10 frames"));
}

#[test]
fn the_wgpu_device_gives_the_cpu_probabilities() {
    let weights = tiny_weights("tiny-c.safetensors");
    let frames = frame_folder("frames16", 16);
    let run = |device: &str| {
        let args = ["predict", "--weights", weights.to_str().unwrap(), "--frames", frames.to_str().unwrap(), "--json", "--device", device];
        stdout_json(&m3dfel(&args))
    };
    let (cpu, gpu) = (run("cpu"), run("wgpu"));
    let (a, b) = (floats(&cpu["clips"][0]["probabilities"]), floats(&gpu["clips"][0]["probabilities"]));
    let error = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(error <= 1e-4, "wgpu vs cpu probabilities differ by {error}");
}

#[test]
fn a_folder_of_100000_frames_is_sampled_without_reading_them_all() {
    // 100,000 frames (symbolic links to one picture) of which the 16 the sampling takes,
    // ⌊100000·i/16⌋ = 6250·i, are pictures of their own: the answer must be that of a
    // folder holding only those 16.
    let weights = tiny_weights("tiny-many.safetensors");
    let (many, sixteen) = (scratch("many-frames"), scratch("sixteen-frames"));
    let _ = std::fs::remove_dir_all(&many);
    std::fs::create_dir_all(&many).unwrap();
    std::fs::create_dir_all(&sixteen).unwrap();
    let plain = scratch("plain-frame.png");
    image::RgbImage::from_pixel(80, 60, image::Rgb([90, 100, 110])).save(&plain).unwrap();
    for i in 0..100_000u32 {
        let name = format!("{i:06}.png");
        if i % 6250 == 0 {
            let k = i / 6250;
            let frame = image::RgbImage::from_fn(80, 60, |x, y| image::Rgb([(x * 3 + k * 15) as u8, (y * 4) as u8, (k * 13) as u8]));
            frame.save(many.join(&name)).unwrap();
            frame.save(sixteen.join(&name)).unwrap();
        } else {
            std::os::unix::fs::symlink(&plain, many.join(&name)).unwrap();
        }
    }
    let predict = |dir: &PathBuf| stdout_json(&m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--frames", dir.to_str().unwrap(), "--json"]));
    let started = std::time::Instant::now();
    let (from_many, from_sixteen) = (predict(&many), predict(&sixteen));
    println!("100,000 frames and 16 frames classified in {:.1} s", started.elapsed().as_secs_f64());
    assert_eq!(from_many["clips"][0]["probabilities"], from_sixteen["clips"][0]["probabilities"]);
}
