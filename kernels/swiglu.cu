// SwiGLU: out = silu(gate) · up, element-wise over n = T·I elements. Activations and their gradients bf16.
#include "common.cuh"

// out may alias gate or up (the inference forward runs SwiGlu(gate, gate, up)): no __restrict__; each element is read
// before it is written, by one thread.
extern "C" __global__ void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = float_to_bf16(silu(bf16_to_float(gate[i])) * bf16_to_float(up[i]));
}

// gateGrad += dy · up · σ(g)(1 + g(1 − σ(g))); upGrad += dy · g · σ(g) (silu(g) = g·σ(g)). bf16 read-add-round-write.
// grid-stride: grid (min(ceil(n / 256), 65535)), block (256).
extern "C" __global__ void swiglu_backward(bf16* __restrict__ gateGrad, bf16* __restrict__ upGrad,
                                          const bf16* __restrict__ outGrad, const bf16* __restrict__ gate,
                                          const bf16* __restrict__ up, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float g = bf16_to_float(gate[i]), u = bf16_to_float(up[i]), dy = bf16_to_float(outGrad[i]);
        float sig = 1.0f / (1.0f + expf(-g));
        gateGrad[i] = float_to_bf16(bf16_to_float(gateGrad[i]) + dy * u * sig * (1.0f + g * (1.0f - sig)));
        upGrad[i] = float_to_bf16(bf16_to_float(upGrad[i]) + dy * g * sig);
    }
}
