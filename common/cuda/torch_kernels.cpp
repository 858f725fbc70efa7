#include "common/cuda/torch_kernels.hpp"

#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/torch.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "common/cuda/kernels.hpp"

namespace duet::cuda {

namespace {

std::atomic<bool>& enabled_flag() {
  static std::atomic<bool> on{[] {
    const char* e = std::getenv("DUET_CUDA_KERNELS");
    return !(e && std::strcmp(e, "0") == 0);
  }()};
  return on;
}

bool dtype_of(c10::ScalarType t, DType& out) {
  switch (t) {
    case c10::kFloat: out = DType::f32; return true;
    case c10::kBFloat16: out = DType::bf16; return true;
    case c10::kHalf: out = DType::f16; return true;
    default: return false;
  }
}

DType dtype_of(const torch::Tensor& t) {
  DType d{};
  if (!dtype_of(t.scalar_type(), d)) throw std::invalid_argument("duet::cuda: unsupported dtype");
  return d;
}

void* stream_of(const torch::Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.get_device()).stream(); }

bool aligned16(const torch::Tensor& t) { return reinterpret_cast<uintptr_t>(t.data_ptr()) % 16 == 0; }

// rows of [*, heads, d] whose heads and dims are contiguous and 16-byte aligned
bool rows_of_heads(const torch::Tensor& t) {
  return t.dim() == 3 && t.stride(2) == 1 && t.stride(1) == t.size(2) && aligned16(t) &&
         (t.stride(0) * t.element_size()) % 16 == 0;
}

const int64_t* longs(const torch::Tensor& t) {
  if (!t.defined()) return nullptr;
  if (t.scalar_type() != torch::kLong || !t.is_contiguous())
    throw std::invalid_argument("duet::cuda: index tensors must be contiguous int64");
  return t.data_ptr<int64_t>();
}

}  // namespace

bool kernels_enabled() { return enabled_flag().load(std::memory_order_relaxed); }
void set_kernels_enabled(bool on) { enabled_flag().store(on); }

bool paged_attention_usable(const torch::Tensor& q, const torch::Tensor& k_pool) {
  DType d{};
  return q.is_cuda() && dtype_of(q.scalar_type(), d) && q.scalar_type() == k_pool.scalar_type() &&
         rows_of_heads(q) && k_pool.is_contiguous() && k_pool.dim() == 3 &&
         paged_attention_supports(q.size(2), q.size(1), k_pool.size(1));
}

torch::Tensor paged_attention(const PagedAttentionCall& c, const torch::Tensor& k_pool, const torch::Tensor& v_pool,
                              const torch::Tensor& q) {
  const c10::cuda::CUDAGuard guard(q.device());
  const int64_t T = q.size(0), qh = q.size(1), d = q.size(2), kvh = k_pool.size(1);
  auto out = torch::empty({T, qh * d}, q.options());
  PagedAttentionArgs a;
  a.out = out.data_ptr();
  a.q = q.data_ptr();
  a.k_pool = k_pool.data_ptr();
  a.v_pool = v_pool.data_ptr();
  a.tables = longs(*c.tables);
  a.table_index = longs(*c.table_index);
  a.key_offset = longs(*c.key_offset);
  a.key_len = longs(*c.key_len);
  a.rows = T;
  a.table_stride = c.tables->size(1);
  a.q_heads = qh;
  a.kv_heads = kvh;
  a.head_dim = d;
  a.block_size = c.block_size;
  a.q_stride = q.stride(0);
  a.out_stride = qh * d;
  a.window = c.window;
  a.max_keys = c.window > 0 ? std::min(c.max_keys, c.window) : c.max_keys;
  a.scale = float(c.scale);
  a.softcap = float(c.softcap);
  a.dtype = dtype_of(q);
  a.splits = paged_attention_splits(T, qh, kvh, a.max_keys, q.get_device());
  torch::Tensor ws;  // freed when the kernels are queued: the caching allocator keeps it for the stream
  if (a.splits > 1) {
    ws = torch::empty({int64_t(paged_attention_workspace_bytes(T, qh, d, a.splits) / sizeof(float))},
                      q.options().dtype(torch::kFloat));
    a.workspace = ws.data_ptr();
  }
  cuda::paged_attention(a, stream_of(q));
  return out;
}

bool write_kv_usable(const torch::Tensor& k_pool, const torch::Tensor& k, const torch::Tensor& v) {
  DType d{};
  return k.is_cuda() && dtype_of(k.scalar_type(), d) && k.scalar_type() == k_pool.scalar_type() &&
         v.scalar_type() == k.scalar_type() && rows_of_heads(k) && rows_of_heads(v) && k_pool.is_contiguous() &&
         aligned16(k_pool) && (k_pool.size(1) * k_pool.size(2) * k.element_size()) % 16 == 0;
}

void write_kv(const torch::Tensor& k_pool, const torch::Tensor& v_pool, const torch::Tensor& k, const torch::Tensor& v,
              const torch::Tensor& slots) {
  const c10::cuda::CUDAGuard guard(k.device());
  cuda::write_kv(k_pool.data_ptr(), v_pool.data_ptr(), k.data_ptr(), v.data_ptr(), longs(slots), k.size(0), k.size(1),
                 k.size(2), k.stride(0), v.stride(0), dtype_of(k), stream_of(k));
}

bool rope_usable(const torch::Tensor& x, const torch::Tensor& cos) {
  DType d{};
  return x.is_cuda() && dtype_of(x.scalar_type(), d) && cos.scalar_type() == x.scalar_type() && x.dim() == 3 &&
         x.stride(2) == 1 && x.stride(1) == x.size(2) && cos.is_contiguous() && cos.size(1) % 2 == 0 &&
         cos.size(1) <= x.size(2);
}

torch::Tensor rope(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin,
                   const torch::Tensor& positions) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = torch::empty(x.sizes(), x.options());
  cuda::rope(out.data_ptr(), x.data_ptr(), cos.data_ptr(), sin.contiguous().data_ptr(), longs(positions), x.size(0),
             x.size(1), x.size(2), cos.size(1), x.stride(0), dtype_of(x), stream_of(x));
  return out;
}

bool rms_norm_usable(const torch::Tensor& x, const torch::Tensor& w, bool one_plus) {
  DType d{};
  return x.is_cuda() && dtype_of(x.scalar_type(), d) && x.is_contiguous() && w.is_contiguous() &&
         w.dim() == 1 && w.size(0) == x.size(-1) &&
         w.scalar_type() == (one_plus ? c10::kFloat : x.scalar_type());
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps, bool one_plus) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto out = torch::empty_like(x);
  const int64_t cols = x.size(-1);
  cuda::rms_norm(out.data_ptr(), nullptr, x.data_ptr(), nullptr, w.data_ptr(), x.numel() / cols, cols, float(eps),
                 one_plus, dtype_of(x), stream_of(x));
  return out;
}

std::pair<torch::Tensor, torch::Tensor> add_rms_norm(const torch::Tensor& x, const torch::Tensor& a,
                                                     const torch::Tensor& w, double eps, bool one_plus) {
  const c10::cuda::CUDAGuard guard(x.device());
  auto ac = a.contiguous();
  auto sum = torch::empty_like(x), out = torch::empty_like(x);
  const int64_t cols = x.size(-1);
  cuda::rms_norm(out.data_ptr(), sum.data_ptr(), x.data_ptr(), ac.data_ptr(), w.data_ptr(), x.numel() / cols, cols,
                 float(eps), one_plus, dtype_of(x), stream_of(x));
  return {sum, out};
}

bool gated_usable(const torch::Tensor& gu) {
  DType d{};
  return gu.is_cuda() && dtype_of(gu.scalar_type(), d) && gu.dim() == 2 && gu.is_contiguous() && gu.size(1) % 2 == 0;
}

torch::Tensor gated_activation(const torch::Tensor& gu, int act) {
  const c10::cuda::CUDAGuard guard(gu.device());
  const int64_t inter = gu.size(1) / 2;
  auto out = torch::empty({gu.size(0), inter}, gu.options());
  cuda::gated_activation(out.data_ptr(), gu.data_ptr(), gu.size(0), inter, static_cast<Gate>(act), dtype_of(gu),
                         stream_of(gu));
  return out;
}

}  // namespace duet::cuda
