// DMIN + instance gate, fused: one workgroup per clip (bag).
//
// For A (attended) and ori, both [B, N, C] row-major:
//   μ_in[c]  = mean_n A[n, c]              σ²_in[c] = Σ_n (A[n, c] − μ_in[c])² / max(N − 1, 1)
//   μ_bag    = mean_c μ_in[c]              σ²_bag   = mean_c σ²_in[c] + mean_c (μ_in[c] − μ_bag)²
//   μ = w₀ μ_in + w₁ μ_bag,  σ² = w'₀ σ²_in + w'₁ σ²_bag   (w = softmax(mean logits), w' = softmax(var logits))
//   gate  = sigmoid((A − μ) / sqrt(σ² + 1e-5) · γ[c] + β[c])
//   gated = ori · gate
// σ²_bag is the spec's mean_c(σ²_in + μ_in²) − μ_bag², rearranged so that no large terms
// cancel; all statistics are taken on A − A[b, 0, 0] (a per-clip shift that leaves DMIN
// unchanged) so f32 sums stay accurate for features with a large common offset.
// N = 1: the instance variance is defined as 0 (divisor max(N − 1, 1)).

// Every binding is read_write: Burn's allocator may place several small tensors in one
// wgpu buffer, and wgpu forbids mixing read-only and read-write views of a buffer in a dispatch.
@group(0) @binding(0) var<storage, read_write> attended: array<f32>;
@group(0) @binding(1) var<storage, read_write> ori: array<f32>;
@group(0) @binding(2) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> beta: array<f32>;
// mean-mixing logits (2), then variance-mixing logits (2)
@group(0) @binding(4) var<storage, read_write> mixing: array<f32>;
@group(0) @binding(5) var<storage, read_write> gated: array<f32>;
@group(0) @binding(6) var<storage, read_write> gate: array<f32>;
// B, N, C
@group(0) @binding(7) var<storage, read_write> dims: array<u32>;

const WORKGROUP_SIZE: u32 = {{ workgroup_size }}u;
const EPSILON: f32 = 1e-5;

var<workgroup> scratch: array<f32, WORKGROUP_SIZE>;

// (μ_in, σ²_in) of channel c of the clip starting at `base`, on values shifted by `shift`.
fn instance_stats(base: u32, c: u32, n: u32, channels: u32, shift: f32) -> vec2<f32> {
    var sum = 0.0;
    for (var i = 0u; i < n; i++) {
        sum += attended[base + i * channels + c] - shift;
    }
    let mean = sum / f32(n);
    var squares = 0.0;
    for (var i = 0u; i < n; i++) {
        let d = attended[base + i * channels + c] - shift - mean;
        squares += d * d;
    }
    return vec2<f32>(mean, squares / f32(max(n, 2u) - 1u));
}

// Sum of `value` over the workgroup (every invocation gets the total).
fn workgroup_sum(value: f32, tid: u32) -> f32 {
    scratch[tid] = value;
    workgroupBarrier();
    for (var stride = WORKGROUP_SIZE / 2u; stride > 0u; stride /= 2u) {
        if (tid < stride) {
            scratch[tid] += scratch[tid + stride];
        }
        workgroupBarrier();
    }
    let total = scratch[0];
    workgroupBarrier();
    return total;
}

fn softmax2(a: f32, b: f32) -> vec2<f32> {
    let m = max(a, b);
    let ea = exp(a - m);
    let eb = exp(b - m);
    return vec2<f32>(ea, eb) / (ea + eb);
}

@compute @workgroup_size({{ workgroup_size }}, 1, 1)
fn main(
    @builtin(workgroup_id) workgroup: vec3<u32>,
    @builtin(local_invocation_index) tid: u32,
) {
    let n = dims[1];
    let channels = dims[2];
    let base = workgroup.x * n * channels;
    let shift = attended[base];

    var mean_sum = 0.0;
    for (var c = tid; c < channels; c += WORKGROUP_SIZE) {
        mean_sum += instance_stats(base, c, n, channels, shift).x;
    }
    let mean_bag = workgroup_sum(mean_sum, tid) / f32(channels);

    var var_sum = 0.0;
    for (var c = tid; c < channels; c += WORKGROUP_SIZE) {
        let stats = instance_stats(base, c, n, channels, shift);
        let d = stats.x - mean_bag;
        var_sum += stats.y + d * d;
    }
    let var_bag = workgroup_sum(var_sum, tid) / f32(channels);

    let wm = softmax2(mixing[0], mixing[1]);
    let wv = softmax2(mixing[2], mixing[3]);
    for (var c = tid; c < channels; c += WORKGROUP_SIZE) {
        let stats = instance_stats(base, c, n, channels, shift);
        let mean = wm.x * stats.x + wm.y * mean_bag;
        let inv_std = inverseSqrt(wv.x * stats.y + wv.y * var_bag + EPSILON);
        for (var i = 0u; i < n; i++) {
            let at = base + i * channels + c;
            let normalized = (attended[at] - shift - mean) * inv_std * gamma[c] + beta[c];
            let g = 1.0 / (1.0 + exp(-normalized));
            gate[at] = g;
            gated[at] = ori[at] * g;
        }
    }
}
