// Attention over the paged KV pool read in place (no gathered, padded copy of the history):
// flash-decoding. One block takes one query row, GC query heads of one KV head (their K and V
// are read once for the whole group) and one range of the row's keys (a split). Its threads are
// cut into key groups of TPK threads; a key group holds a key's head_dim as 16-byte pieces, one
// per thread, and keeps an online softmax over every NG-th key of the range. The key groups are
// merged through shared memory; with several splits, a second kernel merges the splits.
// Only a row's valid keys are loaded, so stale values elsewhere in the pool never reach a sum.
#include <cmath>
#include <mutex>
#include <vector>

#include "common/cuda/dtype.cuh"

namespace duet::cuda {
namespace {

using detail::from_f;
using detail::load_floats;
using detail::to_f;

constexpr int kThreads = 128;
constexpr int kMinKeysPerSplit = 64;
constexpr int kMaxSplits = 64;

template <typename T, int D>
struct Shape {
  static constexpr int tpk = (D * int(sizeof(T)) / 16) < 32 ? D * int(sizeof(T)) / 16 : 32;  // threads per key
  static constexpr int vec = D / tpk;                                                         // dims per thread
  static constexpr int groups = kThreads / tpk;                                               // key groups
  static constexpr int unroll = vec * int(sizeof(T)) > 16 ? 2 : 4;                            // keys per group in flight
};

struct Partials {
  float* acc;  // [rows, q_heads, splits, D] sums of p * v under the split's max
  float* m;    // [rows, q_heads, splits]
  float* l;    // [rows, q_heads, splits]
};

template <typename T, int D, int GC>
__global__ void __launch_bounds__(kThreads) paged_attention_kernel(PagedAttentionArgs a, Partials part, int bs_shift) {
  using S = Shape<T, D>;
  constexpr int TPK = S::tpk, VEC = S::vec, NG = S::groups;
  const int64_t row = blockIdx.x;
  const int h0 = blockIdx.y * GC, split = blockIdx.z;
  const int group = int(a.q_heads / a.kv_heads), kvh = h0 / group;
  const int lane = threadIdx.x % TPK, kg = threadIdx.x / TPK;

  const int64_t tok = a.token ? a.token[row] : row;
  const int64_t klen = a.key_len[row], koff = a.key_offset[row];
  const int64_t* table = a.tables + (a.table_index ? a.table_index[row] : row) * a.table_stride;
  const int64_t j0 = a.window > 0 && klen > a.window ? klen - a.window : 0;
  const int64_t chunk = (a.max_keys + a.splits - 1) / a.splits;
  const int64_t js = j0 + split * chunk, je = min(klen, js + chunk);

  float q[GC][VEC];
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    load_floats<T, VEC>(static_cast<const T*>(a.q) + tok * a.q_stride + (h0 + g) * D + lane * VEC, q[g]);
#pragma unroll
    for (int i = 0; i < VEC; ++i) q[g][i] *= a.scale;
  }
  float m[GC], l[GC], acc[GC][VEC];
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < VEC; ++i) acc[g][i] = 0.f;
  }
  const T* kp = static_cast<const T*>(a.k_pool);
  const T* vp = static_cast<const T*>(a.v_pool);
  const int64_t bs = a.block_size, head_off = int64_t(kvh) * D + lane * VEC, slot_stride = a.kv_heads * D;
  // every thread runs the same trip count (the shuffles need the whole warp); a key group past
  // the range computes nothing and loads nothing. U keys per key group are loaded before the
  // first is used, so that several loads are in flight per thread.
  constexpr int U = S::unroll;
  for (int64_t base = js; base < je; base += int64_t(NG) * U) {
    detail::Raw<T, VEC> kr[U], vr[U];
    bool valid[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t j = base + int64_t(u) * NG + kg;
      valid[u] = j < je;
      if (valid[u]) {
        const int64_t pos = koff + j;  // block size a power of two (shift, mask) or not (divide)
        const int64_t slot = bs_shift >= 0 ? (table[pos >> bs_shift] << bs_shift) + (pos & (bs - 1))
                                           : table[pos / bs] * bs + pos % bs;
        detail::load_raw<T, VEC>(kp + slot * slot_stride + head_off, kr[u]);
        detail::load_raw<T, VEC>(vp + slot * slot_stride + head_off, vr[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      float kv[VEC], vv[VEC];
      if (valid[u]) {
        detail::to_floats<T, VEC>(kr[u], kv);
        detail::to_floats<T, VEC>(vr[u], vv);
      }
#pragma unroll
      for (int g = 0; g < GC; ++g) {
        float s = 0.f;
        if (valid[u]) {
#pragma unroll
          for (int i = 0; i < VEC; ++i) s += q[g][i] * kv[i];
        }
#pragma unroll
        for (int o = TPK / 2; o > 0; o /= 2) s += __shfl_xor_sync(0xffffffffu, s, o);
        if (valid[u]) {
          if (a.softcap > 0.f) s = a.softcap * tanhf(s / a.softcap);
          const float mn = fmaxf(m[g], s);
          const float alpha = __expf(m[g] - mn), p = __expf(s - mn);
          l[g] = l[g] * alpha + p;
#pragma unroll
          for (int i = 0; i < VEC; ++i) acc[g][i] = acc[g][i] * alpha + p * vv[i];
          m[g] = mn;
        }
      }
    }
  }

  // merge the key groups
  __shared__ float sm_m[NG][GC], sm_l[NG][GC];
  __shared__ float sm_acc[NG][GC][D];
#pragma unroll
  for (int g = 0; g < GC; ++g) {
    if (lane == 0) {
      sm_m[kg][g] = m[g];
      sm_l[kg][g] = l[g];
    }
#pragma unroll
    for (int i = 0; i < VEC; ++i) sm_acc[kg][g][lane * VEC + i] = acc[g][i];
  }
  __syncthreads();
  for (int e = threadIdx.x; e < GC * D; e += kThreads) {
    const int g = e / D, d = e % D;
    float mx = -INFINITY;
    for (int k = 0; k < NG; ++k) mx = fmaxf(mx, sm_m[k][g]);
    float sum = 0.f, o = 0.f;
    if (mx != -INFINITY)
      for (int k = 0; k < NG; ++k) {
        if (sm_m[k][g] == -INFINITY) continue;  // a key group that saw no key
        const float w = __expf(sm_m[k][g] - mx);
        sum += sm_l[k][g] * w;
        o += sm_acc[k][g][d] * w;
      }
    const int h = h0 + g;
    if (a.splits == 1) {
      static_cast<T*>(a.out)[tok * a.out_stride + h * D + d] = from_f<T>(sum > 0.f ? o / sum : 0.f);
    } else {
      const int64_t pi = (row * a.q_heads + h) * a.splits + split;
      part.acc[pi * D + d] = o;
      if (d == 0) {
        part.m[pi] = mx;
        part.l[pi] = sum;
      }
    }
  }
}

// One block per (row, head): out = sum_s acc_s e^(m_s - M) / sum_s l_s e^(m_s - M).
template <typename T, int D>
__global__ void combine_splits_kernel(PagedAttentionArgs a, Partials part) {
  const int64_t row = blockIdx.x;
  const int h = blockIdx.y, d = threadIdx.x;
  const int64_t tok = a.token ? a.token[row] : row;
  const int64_t base = (row * a.q_heads + h) * a.splits;
  float mx = -INFINITY;
  for (int s = 0; s < a.splits; ++s) mx = fmaxf(mx, part.m[base + s]);
  float sum = 0.f, o = 0.f;
  if (mx != -INFINITY)
    for (int s = 0; s < a.splits; ++s) {
      const float ms = part.m[base + s];
      if (ms == -INFINITY) continue;  // a split past the row's keys
      const float w = __expf(ms - mx);
      sum += part.l[base + s] * w;
      o += part.acc[(base + s) * D + d] * w;
    }
  static_cast<T*>(a.out)[tok * a.out_stride + h * D + d] = from_f<T>(sum > 0.f ? o / sum : 0.f);
}

// Query heads per block: the largest of 8, 4, 2, 1 that divides the group.
int heads_per_block(int64_t group) {
  for (int gc : {8, 4, 2, 1})
    if (group % gc == 0) return gc;
  return 1;
}

template <typename T, int D, int GC>
void launch(const PagedAttentionArgs& a, const Partials& p, cudaStream_t st) {
  const dim3 grid(unsigned(a.rows), unsigned(a.q_heads / GC), unsigned(a.splits));
  int shift = -1;
  for (int k = 0; k < 31; ++k)
    if ((int64_t(1) << k) == a.block_size) shift = k;
  paged_attention_kernel<T, D, GC><<<grid, kThreads, 0, st>>>(a, p, shift);
  detail::check_launch("paged attention");
  if (a.splits > 1) {
    combine_splits_kernel<T, D><<<dim3(unsigned(a.rows), unsigned(a.q_heads)), D, 0, st>>>(a, p);
    detail::check_launch("paged attention (combine)");
  }
}

template <typename T, int D>
void launch_d(const PagedAttentionArgs& a, const Partials& p, cudaStream_t st) {
  switch (heads_per_block(a.q_heads / a.kv_heads)) {
    case 8: return launch<T, D, 8>(a, p, st);
    case 4: return launch<T, D, 4>(a, p, st);
    case 2: return launch<T, D, 2>(a, p, st);
    default: return launch<T, D, 1>(a, p, st);
  }
}

int multiprocessors(int device) {
  static std::mutex mu;
  static std::vector<int> known;
  std::lock_guard<std::mutex> lock(mu);
  if (device < 0) device = 0;
  if (static_cast<size_t>(device) >= known.size()) known.resize(device + 1, 0);
  if (known[device] == 0) {
    int n = 0;
    if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || n <= 0) n = 108;
    known[device] = n;
  }
  return known[device];
}

}  // namespace

bool paged_attention_supports(int64_t head_dim, int64_t q_heads, int64_t kv_heads) {
  const bool built = head_dim == 8 || head_dim == 16 || head_dim == 32 || head_dim == 64 || head_dim == 128 ||
                     head_dim == 256;
  return built && kv_heads > 0 && q_heads % kv_heads == 0;
}

int paged_attention_splits(int64_t rows, int64_t q_heads, int64_t kv_heads, int64_t max_keys, int device) {
  const int64_t blocks = rows * (q_heads / heads_per_block(q_heads / kv_heads));
  const int64_t want = (2 * int64_t(multiprocessors(device)) + blocks - 1) / blocks;  // two waves
  const int64_t by_len = (max_keys + kMinKeysPerSplit - 1) / kMinKeysPerSplit;
  int64_t s = std::min(want, by_len);
  if (s > kMaxSplits) s = kMaxSplits;
  return int(s < 1 ? 1 : s);
}

size_t paged_attention_workspace_bytes(int64_t rows, int64_t q_heads, int64_t head_dim, int splits) {
  if (splits <= 1) return 0;
  return size_t(rows * q_heads * splits) * (size_t(head_dim) + 2) * sizeof(float);
}

void paged_attention(const PagedAttentionArgs& a, void* stream) {
  if (!paged_attention_supports(a.head_dim, a.q_heads, a.kv_heads))
    throw std::invalid_argument("paged attention: head_dim " + std::to_string(a.head_dim) + " with " +
                                std::to_string(a.q_heads) + " query and " + std::to_string(a.kv_heads) +
                                " KV heads is not built");
  if (a.rows == 0) return;
  if (a.splits > 1 && !a.workspace) throw std::invalid_argument("paged attention: splits without a workspace");
  Partials p{};
  if (a.splits > 1) {
    const int64_t n = a.rows * a.q_heads * a.splits;
    p.acc = static_cast<float*>(a.workspace);
    p.m = p.acc + n * a.head_dim;
    p.l = p.m + n;
  }
  auto st = static_cast<cudaStream_t>(stream);
  detail::with_dtype(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    switch (a.head_dim) {
      case 8: return launch_d<T, 8>(a, p, st);  // the test fixtures' tiny heads
      case 16: return launch_d<T, 16>(a, p, st);
      case 32: return launch_d<T, 32>(a, p, st);
      case 64: return launch_d<T, 64>(a, p, st);
      case 128: return launch_d<T, 128>(a, p, st);
      default: return launch_d<T, 256>(a, p, st);
    }
  });
}

}  // namespace duet::cuda
