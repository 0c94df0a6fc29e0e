//! DMIN + gate as one WGSL compute kernel (`shaders/dmin.wgsl`) on Burn's wgpu backend,
//! natively (Vulkan/Metal/DX12) and in the browser (WebGPU).

use burn::backend::Wgpu;
use burn::backend::wgpu::{CubeTensor, KernelSource, SourceKernel, SourceTemplate, WgpuRuntime, into_contiguous};
use burn::cubecl::prelude::KernelId;
use burn::cubecl::server::KernelArguments;
use burn::cubecl::{CubeCount, CubeDim};
use burn::tensor::{DType, Shape, Tensor, TensorPrimitive};

use crate::dliam::dmin::{DminBackend, DminParams, GateOutput, dmin_gate_portable};

/// Invocations per workgroup: one workgroup handles one clip, looping over channels
/// (C = 1024 → 4 channels per invocation). 256 is WebGPU's guaranteed maximum.
const WORKGROUP_SIZE: u32 = 256;

const SOURCE: &str = include_str!("../../../../shaders/dmin.wgsl");

struct DminKernel;

impl KernelSource for DminKernel {
    fn source(&self) -> SourceTemplate {
        SourceTemplate::new(SOURCE).register("workgroup_size", WORKGROUP_SIZE.to_string())
    }

    fn id(&self) -> KernelId {
        KernelId::new::<Self>()
    }
}

type WgpuTensor = CubeTensor<WgpuRuntime>;

fn primitive<const D: usize>(tensor: Tensor<Wgpu, D>) -> WgpuTensor {
    into_contiguous(tensor.into_primitive().tensor())
}

impl DminBackend for Wgpu {
    fn dmin_gate(attended: Tensor<Self, 3>, ori: Tensor<Self, 3>, params: DminParams<Self>) -> GateOutput<Self> {
        if attended.dtype() != DType::F32 {
            // The kernel reads and writes f32; other float types (`--precision f16`) take
            // the portable path.
            return dmin_gate_portable(attended, ori, params);
        }
        let [batch, n, channels] = attended.dims();
        let mixing = Tensor::cat(vec![params.mean_weight, params.var_weight], 0); // [4]
        let attended = primitive(attended);
        let ori = primitive(ori);
        let gamma = primitive(params.gamma);
        let beta = primitive(params.beta);
        let mixing = primitive(mixing);

        let client = attended.client.clone();
        let device = attended.device.clone();
        let shape = Shape::from([batch, n, channels]);
        let output = || {
            let handle = client.empty(shape.num_elements() * size_of::<f32>());
            WgpuTensor::new_contiguous(client.clone(), device.clone(), shape.clone(), handle, DType::F32)
        };
        let (gated, gate) = (output(), output());
        let dims: Vec<u8> = [batch, n, channels].iter().flat_map(|&d| (d as u32).to_le_bytes()).collect();
        let dims = client.create_from_slice(&dims);

        client.launch(
            Box::new(SourceKernel::new(DminKernel, CubeDim::new_1d(WORKGROUP_SIZE))),
            CubeCount::Static(batch as u32, 1, 1),
            KernelArguments::new().with_buffers(vec![
                attended.handle.clone().binding(),
                ori.handle.clone().binding(),
                gamma.handle.clone().binding(),
                beta.handle.clone().binding(),
                mixing.handle.clone().binding(),
                gated.handle.clone().binding(),
                gate.handle.clone().binding(),
                dims.binding(),
            ]),
        );
        let wrap = |t: WgpuTensor| Tensor::from_primitive(TensorPrimitive::Float(t));
        GateOutput { gated: wrap(gated), gate: wrap(gate) }
    }
}
