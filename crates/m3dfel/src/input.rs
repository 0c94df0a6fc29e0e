//! Clips given as numbers rather than pictures (`m3dfel predict --tensor`, the browser
//! package's `Float32Array`): the checks every such entry point makes before the model runs.
//! Values must be pixel / 255, in [0, 1] (the spec: no mean/std normalisation); a model
//! given 0–255 values or normalised ones answers with confident garbage, so such values are
//! named with the range found.

/// How far outside [0, 1] a value may lie before the clip is taken for data of another
/// scale (0–255 pixels, mean/std-normalised values). Resampling filters that overshoot a
/// little stay well inside.
pub const RANGE_MARGIN: f32 = 0.5;

/// What is wrong with a clip's values.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum ValueError {
    #[error("value #{0} is NaN or infinite")]
    NotFinite(usize),
    #[error("the values range from {min} to {max}, but the model expects pixel / 255, in [0, 1]{}", range_hint(.min, .max))]
    OutOfRange { min: f32, max: f32 },
}

fn range_hint(min: &f32, max: &f32) -> &'static str {
    if *min >= -RANGE_MARGIN && *max > 2.0 { ": for 0–255 data, divide by 255" } else { "" }
}

/// Checks that every value is finite and that they all lie within [`RANGE_MARGIN`] of [0, 1].
pub fn check_values(values: &[f32]) -> Result<(), ValueError> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(ValueError::NotFinite(i));
    }
    let (min, max) = values.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if min < -RANGE_MARGIN || max > 1.0 + RANGE_MARGIN {
        return Err(ValueError::OutOfRange { min, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_near_0_to_1_pass_and_other_scales_are_named_with_their_range() {
        assert_eq!(check_values(&[0.0, 0.5, 1.0, 1.2, -0.1]), Ok(()));
        let bytes = check_values(&[0.0, 17.0, 255.0]).unwrap_err();
        assert_eq!(bytes, ValueError::OutOfRange { min: 0.0, max: 255.0 });
        assert_eq!(
            bytes.to_string(),
            "the values range from 0 to 255, but the model expects pixel / 255, in [0, 1]: for 0–255 data, divide by 255"
        );
        // ImageNet-normalised values: no hint to divide by 255.
        let normalised = check_values(&[-2.1, 0.3, 2.6]).unwrap_err().to_string();
        assert!(normalised.starts_with("the values range from -2.1 to 2.6") && !normalised.contains("divide by 255"), "{normalised}");
        assert_eq!(check_values(&[0.5, f32::NAN]), Err(ValueError::NotFinite(1)));
        assert_eq!(check_values(&[0.5, 1.0, f32::INFINITY]), Err(ValueError::NotFinite(2)));
    }
}
