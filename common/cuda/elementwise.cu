// The small per-token kernels of a layer, each one pass over its rows: the KV write into the
// pool, rotary embedding, (residual +) RMSNorm and the gated MLP activation. Each rounds where
// the LibTorch ops it replaces round, so that they agree to the last bit or one rounding.
#include <cmath>

#include "common/cuda/dtype.cuh"

namespace duet::cuda {
namespace {

using detail::from_f;
using detail::round_to;
using detail::to_f;

// One block per token; 16-byte copies of each head's row into its slot.
template <typename T>
__global__ void write_kv_kernel(T* kp, T* vp, const T* k, const T* v, const int64_t* slots, int64_t kv_heads,
                                int64_t head_dim, int64_t k_stride, int64_t v_stride) {
  constexpr int per = 16 / sizeof(T);
  const int64_t t = blockIdx.x, slot = slots[t], n = kv_heads * head_dim / per;
  const uint4* ks = reinterpret_cast<const uint4*>(k + t * k_stride);
  const uint4* vs = reinterpret_cast<const uint4*>(v + t * v_stride);
  uint4* kd = reinterpret_cast<uint4*>(kp + slot * kv_heads * head_dim);
  uint4* vd = reinterpret_cast<uint4*>(vp + slot * kv_heads * head_dim);
  for (int64_t i = threadIdx.x; i < n; i += blockDim.x) {
    kd[i] = ks[i];
    vd[i] = vs[i];
  }
}

// One block per token, one thread per (head, pair of rotated dims) and per passed-through dim.
template <typename T>
__global__ void rope_kernel(T* out, const T* x, const T* cosr, const T* sinr, const int64_t* positions,
                            int64_t heads, int64_t head_dim, int64_t rot, int64_t x_stride) {
  const int64_t t = blockIdx.x, half = rot / 2, p = positions[t];
  const T* c = cosr + p * rot;
  const T* s = sinr + p * rot;
  for (int64_t e = threadIdx.x; e < heads * head_dim; e += blockDim.x) {
    const int64_t h = e / head_dim, i = e % head_dim;
    const T* xr = x + t * x_stride + h * head_dim;
    // each product and the sum rounded on its own (no fused multiply-add), as separate ops do
    float r;
    if (i < half) {  // x1 * c - x2 * s
      r = round_to<T>(__fadd_rn(round_to<T>(__fmul_rn(to_f(xr[i]), to_f(c[i]))),
                                round_to<T>(__fmul_rn(-to_f(xr[i + half]), to_f(s[i])))));
    } else if (i < rot) {  // x2 * c + x1 * s
      r = round_to<T>(__fadd_rn(round_to<T>(__fmul_rn(to_f(xr[i]), to_f(c[i]))),
                                round_to<T>(__fmul_rn(to_f(xr[i - half]), to_f(s[i])))));
    } else {
      r = to_f(xr[i]);
    }
    out[(t * heads + h) * head_dim + i] = from_f<T>(r);
  }
}

template <int Threads>
__device__ float block_sum(float v) {
  __shared__ float part[Threads / 32];
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  if (threadIdx.x % 32 == 0) part[threadIdx.x / 32] = v;
  __syncthreads();
  float s = 0.f;
#pragma unroll
  for (int i = 0; i < Threads / 32; ++i) s += part[i];
  return s;
}

// One block per row. With a residual the sum is rounded to T first (as x + a in LibTorch).
template <typename T, int Threads>
__global__ void __launch_bounds__(Threads) rms_norm_kernel(T* out, T* sum_out, const T* x, const T* res,
                                                           const void* w, int64_t cols, float eps, bool one_plus) {
  const int64_t r = blockIdx.x;
  const T* xr = x + r * cols;
  float ss = 0.f;
  for (int64_t i = threadIdx.x; i < cols; i += Threads) {
    float v = to_f(xr[i]);
    if (res) {
      v = round_to<T>(v + to_f(res[r * cols + i]));
      sum_out[r * cols + i] = from_f<T>(v);
    }
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum<Threads>(ss) / float(cols) + eps);
  const T* src = res ? sum_out : xr;  // the rounded sum, read back by the thread that wrote it
  for (int64_t i = threadIdx.x; i < cols; i += Threads) {
    const float n = to_f(src[r * (res ? cols : 0) + i]) * inv;
    out[r * cols + i] = one_plus ? from_f<T>(n * static_cast<const float*>(w)[i])
                                 : from_f<T>(to_f(static_cast<const T*>(w)[i]) * round_to<T>(n));
  }
}

template <typename T>
__global__ void gated_kernel(T* out, const T* gu, int64_t rows, int64_t inter, Gate g) {
  const int64_t n = rows * inter;
  for (int64_t e = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = e / inter, i = e % inter;
    const float x = to_f(gu[r * 2 * inter + i]), up = to_f(gu[r * 2 * inter + inter + i]);
    float a;
    switch (g) {
      case Gate::silu: a = x / (1.f + __expf(-x)); break;
      case Gate::gelu_tanh: a = 0.5f * x * (1.f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x))); break;
      default: a = 0.5f * x * (1.f + erff(x * 0.7071067811865476f)); break;
    }
    out[e] = from_f<T>(round_to<T>(a) * up);  // act(x) in T, then the product in T
  }
}

}  // namespace

void write_kv(void* k_pool, void* v_pool, const void* k, const void* v, const int64_t* slots, int64_t tokens,
              int64_t kv_heads, int64_t head_dim, int64_t k_stride, int64_t v_stride, DType dt, void* stream) {
  if (tokens == 0) return;
  detail::with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    if ((kv_heads * head_dim * sizeof(T)) % 16 || (k_stride * sizeof(T)) % 16 || (v_stride * sizeof(T)) % 16)
      throw std::invalid_argument("write_kv: rows must be whole 16-byte pieces");
    write_kv_kernel<T><<<unsigned(tokens), 128, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<T*>(k_pool), static_cast<T*>(v_pool), static_cast<const T*>(k), static_cast<const T*>(v), slots,
        kv_heads, head_dim, k_stride, v_stride);
  });
  detail::check_launch("write_kv");
}

void rope(void* out, const void* x, const void* cos, const void* sin, const int64_t* positions, int64_t tokens,
          int64_t heads, int64_t head_dim, int64_t rotary_dim, int64_t x_stride, DType dt, void* stream) {
  if (tokens == 0) return;
  detail::with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    rope_kernel<T><<<unsigned(tokens), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<T*>(out), static_cast<const T*>(x), static_cast<const T*>(cos), static_cast<const T*>(sin),
        positions, heads, head_dim, rotary_dim, x_stride);
  });
  detail::check_launch("rope");
}

void rms_norm(void* out, void* sum_out, const void* x, const void* residual, const void* w, int64_t rows,
              int64_t cols, float eps, bool one_plus, DType dt, void* stream) {
  if (rows == 0) return;
  detail::with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    rms_norm_kernel<T, 256><<<unsigned(rows), 256, 0, static_cast<cudaStream_t>(stream)>>>(
        static_cast<T*>(out), static_cast<T*>(sum_out), static_cast<const T*>(x), static_cast<const T*>(residual), w,
        cols, eps, one_plus);
  });
  detail::check_launch("rms_norm");
}

void gated_activation(void* out, const void* gu, int64_t rows, int64_t inter, Gate g, DType dt, void* stream) {
  if (rows == 0) return;
  const int64_t n = rows * inter;
  const unsigned blocks = unsigned(std::min<int64_t>((n + 255) / 256, 132 * 16));
  detail::with_dtype(dt, [&](auto tag) {
    using T = decltype(tag);
    gated_kernel<T><<<blocks, 256, 0, static_cast<cudaStream_t>(stream)>>>(static_cast<T*>(out),
                                                                           static_cast<const T*>(gu), rows, inter, g);
  });
  detail::check_launch("gated_activation");
}

}  // namespace duet::cuda
