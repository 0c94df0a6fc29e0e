//! # m3dfel
//!
//! M3DFEL ("Rethinking the Learning Paradigm for Dynamic Facial Expression Recognition",
//! CVPR 2023) in [Burn](https://burn.dev): one model definition, generic over the backend,
//! shared by the CPU and CUDA trainer, the command-line tool and the WebGPU browser package.
//!
//! A clip of 16 frames is cut into N = 4 short 3D instances ([`instances`]), the R3D-18
//! 3D CNN ([`backbone`]) embeds each, and DLIAM ([`dliam`]: BiLSTM, multi-head
//! self-attention, DMIN, sigmoid gate, Conv1d) aggregates them into one clip prediction
//! over seven emotions ([`CLASSES`]).
//!
//! ```
//! use burn::backend::Flex;
//! use burn::tensor::Tensor;
//! use m3dfel::M3dfelConfig;
//!
//! let config = M3dfelConfig::preset("tiny").unwrap();
//! let device = Default::default();
//! let model = config.init::<Flex>(&device);
//! let clips = Tensor::<Flex, 5>::zeros([1, 16, 3, 64, 64], &device);
//! let out = model.forward(clips);
//! assert_eq!(out.logits.dims(), [1, 7]);
//! assert_eq!(out.instance_logits.dims(), [1, 4, 7]);
//! ```

pub mod backbone;
pub mod classes;
pub mod cli_support;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda_check;
pub mod dliam;
pub mod face;
pub mod frames;
pub mod input;
pub mod instances;
pub mod kernels;
pub mod model;
pub mod npy;
pub mod predict;
pub mod reader_panics;
pub mod timeline;
pub mod video;
#[doc(hidden)]
pub mod testing;
pub mod weights;

pub use classes::{CLASSES, NUM_CLASSES};
pub use config::{Ablation, Aggregation, M3dfelConfig, PRESETS, UnknownPreset};
pub use dliam::dmin::DminBackend;
pub use model::{M3dfel, M3dfelBackend, M3dfelOutput};
