//! Timing shared by the benchmarks (each a binary of its own that includes this module):
//! untimed warm-up runs, then timed runs and their median.

use std::time::{Duration, Instant};

/// `runs` timings of `work` after `warmup` untimed runs, in the order they ran.
pub fn timings(warmup: usize, runs: usize, mut work: impl FnMut()) -> Vec<Duration> {
    (0..warmup).for_each(|_| work());
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            work();
            start.elapsed()
        })
        .collect()
}

/// The median of `timings` (of an even count, the upper of the middle two).
pub fn median(timings: &[Duration]) -> Duration {
    let mut sorted = timings.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}
