#pragma once
// Device-side helpers shared by the .cu files: conversions between the storage dtypes and fp32,
// 16-byte vector loads, the dtype switch of the launchers, and launch error checks.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "common/cuda/kernels.hpp"

namespace duet::cuda::detail {

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }

template <typename T>
__device__ __forceinline__ T from_f(float x);
template <>
__device__ __forceinline__ float from_f<float>(float x) { return x; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16(x); }
template <>
__device__ __forceinline__ __half from_f<__half>(float x) { return __float2half(x); }

// x rounded to T and back: what one LibTorch op in dtype T leaves.
template <typename T>
__device__ __forceinline__ float round_to(float x) { return to_f(from_f<T>(x)); }

// N elements of T (N * sizeof(T) a multiple of 16, p 16-byte aligned) as floats.
template <typename T, int N>
__device__ __forceinline__ void load_floats(const T* p, float (&out)[N]) {
  static_assert((N * sizeof(T)) % 16 == 0, "whole 16-byte loads");
  constexpr int per = 16 / sizeof(T);
#pragma unroll
  for (int c = 0; c < N / per; ++c) {
    uint4 raw = __ldg(reinterpret_cast<const uint4*>(p) + c);
    const T* e = reinterpret_cast<const T*>(&raw);
#pragma unroll
    for (int i = 0; i < per; ++i) out[c * per + i] = to_f(e[i]);
  }
}

// The same in two steps, so that several loads can be in flight before the first conversion.
template <typename T, int N>
struct Raw {
  static_assert((N * sizeof(T)) % 16 == 0, "whole 16-byte loads");
  static constexpr int chunks = N * int(sizeof(T)) / 16;
  uint4 c[chunks];
};
template <typename T, int N>
__device__ __forceinline__ void load_raw(const T* p, Raw<T, N>& r) {
#pragma unroll
  for (int c = 0; c < Raw<T, N>::chunks; ++c) r.c[c] = __ldg(reinterpret_cast<const uint4*>(p) + c);
}
template <typename T, int N>
__device__ __forceinline__ void to_floats(const Raw<T, N>& r, float (&out)[N]) {
  constexpr int per = 16 / sizeof(T);
#pragma unroll
  for (int c = 0; c < Raw<T, N>::chunks; ++c) {
    const T* e = reinterpret_cast<const T*>(&r.c[c]);
#pragma unroll
    for (int i = 0; i < per; ++i) out[c * per + i] = to_f(e[i]);
  }
}

template <typename T, int N>
__device__ __forceinline__ void store_floats(T* p, const float (&in)[N]) {
  static_assert((N * sizeof(T)) % 16 == 0, "whole 16-byte stores");
  constexpr int per = 16 / sizeof(T);
#pragma unroll
  for (int c = 0; c < N / per; ++c) {
    uint4 raw;
    T* e = reinterpret_cast<T*>(&raw);
#pragma unroll
    for (int i = 0; i < per; ++i) e[i] = from_f<T>(in[c * per + i]);
    reinterpret_cast<uint4*>(p)[c] = raw;
  }
}

inline void check_launch(const char* what) {
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

// Calls f with a value of the storage type of dt (its type picks the template instance).
template <typename F>
void with_dtype(DType dt, F&& f) {
  switch (dt) {
    case DType::f32: f(float{}); return;
    case DType::bf16: f(__nv_bfloat16{}); return;
    case DType::f16: f(__half{}); return;
  }
  throw std::invalid_argument("duet::cuda: unknown dtype");
}

}  // namespace duet::cuda::detail
