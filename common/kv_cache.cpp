#include "common/kv_cache.hpp"

#include <torch/torch.h>

#include <stdexcept>

namespace duet {

LayerKvCache::LayerKvCache(int64_t kv_heads, int64_t head_dim, int64_t max_positions, c10::ScalarType dtype,
                           c10::Device device, int64_t initial_positions)
    : kv_heads_(kv_heads), head_dim_(head_dim), max_positions_(max_positions) {
  capacity_ = capacity_for(std::max<int64_t>(initial_positions, 1), max_positions);
  auto opts = torch::TensorOptions().dtype(dtype).device(device);
  // zeros, not empty: the static decode path attends over the whole capacity under a mask, and a
  // NaN left in unwritten memory survives the mask (0 * NaN) and poisons the output
  k_ = torch::zeros({kv_heads_, capacity_, head_dim_}, opts);
  v_ = torch::zeros({kv_heads_, capacity_, head_dim_}, opts);
}

int64_t LayerKvCache::capacity_for(int64_t positions, int64_t max_positions) {
  return std::min((positions + kChunk - 1) / kChunk * kChunk, max_positions);
}

void LayerKvCache::reserve(int64_t positions) {
  if (positions <= capacity_) return;
  const int64_t cap = capacity_for(positions, max_positions_);
  auto grow = [&](const torch::Tensor& old) {
    auto t = torch::zeros({kv_heads_, cap, head_dim_}, old.options());
    if (length_ > 0) t.narrow(1, 0, length_).copy_(old.narrow(1, 0, length_));
    return t;
  };
  k_ = grow(k_);
  v_ = grow(v_);
  capacity_ = cap;
}

void LayerKvCache::write(int64_t start, const torch::Tensor& k, const torch::Tensor& v) {
  const int64_t n = k.size(1);
  if (start < 0 || start > length_)
    throw std::invalid_argument("KV cache write at position " + std::to_string(start) + " but the cache holds " +
                                std::to_string(length_) + " positions (no gaps allowed)");
  if (start + n > max_positions_)
    throw std::length_error("KV cache: positions up to " + std::to_string(start + n) + " exceed the limit of " +
                            std::to_string(max_positions_));
  reserve(start + n);
  k_.narrow(1, start, n).copy_(k);
  v_.narrow(1, start, n).copy_(v);
  length_ = start + n;
}

void LayerKvCache::prepare_static(int64_t start) {
  if (start < 0 || start > length_)
    throw std::invalid_argument("KV cache write at position " + std::to_string(start) + " but the cache holds " +
                                std::to_string(length_) + " positions (no gaps allowed)");
  if (start + 1 > max_positions_)
    throw std::length_error("KV cache: positions up to " + std::to_string(start + 1) + " exceed the limit of " +
                            std::to_string(max_positions_));
  reserve(start + 1);
}

void LayerKvCache::write_at(const torch::Tensor& pos, const torch::Tensor& k, const torch::Tensor& v) {
  k_.index_copy_(1, pos, k);
  v_.index_copy_(1, pos, v);
}

torch::Tensor LayerKvCache::keys() const { return k_.narrow(1, 0, length_); }
torch::Tensor LayerKvCache::values() const { return v_.narrow(1, 0, length_); }

int64_t LayerKvCache::bytes() const {
  return k_.defined() ? 2 * k_.numel() * static_cast<int64_t>(k_.element_size()) : 0;
}

}  // namespace duet
