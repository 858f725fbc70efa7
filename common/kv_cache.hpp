#pragma once
// The keys and values of one layer for one sequence, preallocated in chunks of kChunk positions
// so that a decode step appends in place instead of concatenating, and so that the memory a
// sequence holds is predictable (the daemon's KV budget counts it with capacity_for).
#include <torch/types.h>

namespace duet {

class LayerKvCache {
 public:
  LayerKvCache() = default;
  LayerKvCache(int64_t kv_heads, int64_t head_dim, int64_t max_positions, c10::ScalarType dtype, c10::Device device,
               int64_t initial_positions = kChunk);
  static constexpr int64_t kChunk = 256;
  // Positions allocated once a sequence reaches `positions`.
  static int64_t capacity_for(int64_t positions, int64_t max_positions);

  int64_t length() const { return length_; }
  int64_t capacity() const { return capacity_; }
  int64_t max_positions() const { return max_positions_; }

  // Writes k, v [kv_heads, n, head_dim] at positions [start, start+n). start may be below the
  // current length (positions past it are discarded: a rejected draft, a replay), never above.
  void write(int64_t start, const torch::Tensor& k, const torch::Tensor& v);
  // Views of positions [0, length): [kv_heads, length, head_dim]
  torch::Tensor keys() const;
  torch::Tensor values() const;
  void clear() { length_ = 0; }
  int64_t bytes() const;  // allocated, not used

  // For a decode step that must not depend on the position on the host (a CUDA graph): make room
  // for position `start` (same rules as write), then the step writes k/v at a device-side
  // position with write_at and attends over the whole capacity with a mask; commit(start + 1)
  // records the new length afterwards.
  void prepare_static(int64_t start);
  // k, v [kv_heads, 1, head_dim] at position pos (int64 [1] on the device); no host sync.
  void write_at(const torch::Tensor& pos, const torch::Tensor& k, const torch::Tensor& v);
  void commit(int64_t length) { length_ = length; }
  // Views of every allocated position: [kv_heads, capacity, head_dim]
  const torch::Tensor& all_keys() const { return k_; }
  const torch::Tensor& all_values() const { return v_; }

 private:
  void reserve(int64_t positions);
  int64_t kv_heads_ = 0, head_dim_ = 0, max_positions_ = 0;
  int64_t length_ = 0, capacity_ = 0;
  torch::Tensor k_, v_;  // [kv_heads, capacity, head_dim]
};

}  // namespace duet
