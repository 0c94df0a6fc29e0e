//! Training and evaluation of M3DFEL: datasets (the built-in synthetic faces, DFEW,
//! FERV39K, CSV), the paper's recipe with checkpoints that resume exactly, metrics and
//! reports. The `trainer` binary is the command-line front end.

pub mod backend;
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod kernel_cache;
pub mod report;
pub mod rng;
pub mod synth;
pub mod train;
