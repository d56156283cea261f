// SwiGLU: out = silu(gate) · up, element-wise over n = T·I elements.
#include "common.cuh"

extern "C" __global__ void swiglu_forward(bf16* __restrict__ out, const bf16* __restrict__ gate,
                                         const bf16* __restrict__ up, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        out[i] = float_to_bf16(silu(bf16_to_float(gate[i])) * bf16_to_float(up[i]));
}

// gateGrad += dy · up · σ(g)(1 + g(1 − σ(g))); upGrad += dy · silu(g). Gradients fp32.
extern "C" __global__ void swiglu_backward(float* __restrict__ gateGrad, float* __restrict__ upGrad,
                                          const float* __restrict__ outGrad, const bf16* __restrict__ gate,
                                          const bf16* __restrict__ up, long long n)
{
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    {
        float g = bf16_to_float(gate[i]), u = bf16_to_float(up[i]), dy = outGrad[i];
        float sig = 1.0f / (1.0f + __expf(-g));
        gateGrad[i] += dy * u * sig * (1.0f + g * (1.0f - sig));
        upGrad[i] += dy * g * sig;
    }
}
