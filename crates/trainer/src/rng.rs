//! A small counter-based random number generator.
//!
//! Every random draw of a run (data order, augmentation, synthetic clips) comes from a
//! generator keyed by the run's seed and *where* it is used (epoch, clip index, …), never
//! from a stream shared between threads. That makes the data independent of thread timing,
//! and a resumed run needs no saved generator state beyond the epoch it restarts at.

/// SplitMix64 generator (Steele, Lea & Flood 2014): tiny, fast and well mixed.
#[derive(Debug, Clone)]
pub struct Rng {
    state: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator for one use, keyed by the run's seed and the parts of `key`.
    pub fn keyed(seed: u64, key: &[u64]) -> Self {
        let state = key.iter().fold(mix(seed ^ 0x6D33_6466_656C), |acc, &part| {
            mix(acc.rotate_left(17) ^ part.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        });
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.state)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [low, high).
    pub fn range(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) % n.max(1) as u64) as usize
    }

    pub fn chance(&mut self, probability: f32) -> bool {
        self.unit() < probability
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f32 {
        let u = self.unit().max(1e-7);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_same_numbers_other_key_other_numbers() {
        let draw = |key: &[u64]| {
            let mut rng = Rng::keyed(7, key);
            (0..4).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(&[1, 2]), draw(&[1, 2]));
        assert_ne!(draw(&[1, 2]), draw(&[2, 1]));
        assert_ne!(draw(&[1, 2]), draw(&[1, 2, 0]));
    }

    #[test]
    fn unit_draws_cover_the_interval_evenly() {
        let mut rng = Rng::keyed(1, &[]);
        let mut bins = [0usize; 10];
        for _ in 0..100_000 {
            let x = rng.unit();
            assert!((0.0..1.0).contains(&x));
            bins[(x * 10.0) as usize] += 1;
        }
        assert!(bins.iter().all(|&b| (9_000..11_000).contains(&b)), "{bins:?}");
    }
}
