//! The paper's learning-rate schedule, stepped every iteration: a linear warm-up from 0,
//! then cosine decay from the peak to the floor, with t counted from iteration 0 and T the
//! whole run (as the reference's scheduler does, so the cosine part starts slightly below
//! the peak when the warm-up ends).

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct WarmupCosine {
    pub peak: f64,
    pub floor: f64,
    pub warmup_iterations: usize,
    pub total_iterations: usize,
}

impl WarmupCosine {
    /// Learning rate of iteration `t` (0-based).
    pub fn at(&self, t: usize) -> f64 {
        if t < self.warmup_iterations {
            return self.peak * t as f64 / self.warmup_iterations as f64;
        }
        let progress = t as f64 / self.total_iterations.max(1) as f64;
        self.floor + 0.5 * (self.peak - self.floor) * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_follows_the_cosine_to_the_floor() {
        // The paper: 300 epochs, 20 of warm-up, 5e-4 → 5e-6; here 10 iterations per epoch.
        let s = WarmupCosine { peak: 5e-4, floor: 5e-6, warmup_iterations: 200, total_iterations: 3000 };
        assert_eq!(s.at(0), 0.0);
        assert!((s.at(100) - 2.5e-4).abs() < 1e-12);
        let cosine = |t: f64| 5e-6 + 0.5 * (5e-4 - 5e-6) * (1.0 + (std::f64::consts::PI * t / 3000.0).cos());
        assert!((s.at(200) - cosine(200.0)).abs() < 1e-12);
        assert!((s.at(1500) - (5e-6 + 0.5 * (5e-4 - 5e-6))).abs() < 1e-12);
        assert!((s.at(3000) - 5e-6).abs() < 1e-12);
    }
}
