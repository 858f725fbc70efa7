#include "common/kv_blocks.hpp"

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>

namespace duet {

KvBlockAllocator::KvBlockAllocator(int64_t num_blocks, int64_t block_size)
    : num_blocks_(num_blocks), block_size_(block_size) {
  if (num_blocks < 2 || num_blocks > INT32_MAX)
    throw std::invalid_argument("a KV pool needs at least 2 blocks (one is scratch), got " + std::to_string(num_blocks));
  if (block_size < 1) throw std::invalid_argument("KV block size must be positive");
  free_.reserve(static_cast<size_t>(num_blocks - 1));
  for (int64_t b = 1; b < num_blocks; ++b) free_.push_back(static_cast<int32_t>(b));  // sorted: a valid min-heap
}

bool KvBlockAllocator::ensure(BlockTable& table, int64_t positions) {
  const int64_t need = blocks_for(positions, block_size_) - static_cast<int64_t>(table.blocks.size());
  if (need <= 0) return true;
  if (need > free_blocks()) return false;
  for (int64_t i = 0; i < need; ++i) {
    std::pop_heap(free_.begin(), free_.end(), std::greater<>());
    const int32_t b = free_.back();
    free_.pop_back();
    table.blocks.push_back(b);
    high_water_ = std::max<int64_t>(high_water_, b + 1);
  }
  return true;
}

void KvBlockAllocator::release(BlockTable& table) {
  truncate(table, 0);
}

void KvBlockAllocator::truncate(BlockTable& table, int64_t length) {
  length = std::max<int64_t>(length, 0);
  const size_t keep = static_cast<size_t>(blocks_for(length, block_size_));
  while (table.blocks.size() > keep) {
    free_.push_back(table.blocks.back());
    std::push_heap(free_.begin(), free_.end(), std::greater<>());
    table.blocks.pop_back();
  }
  table.length = std::min(table.length, length);
}

int64_t KvBlockAllocator::blocks_in_budget(int64_t budget_bytes, int64_t kv_bytes_per_position, int64_t block_size) {
  const int64_t per_block = std::max<int64_t>(kv_bytes_per_position, 1) * block_size;
  return std::max<int64_t>(2, std::min<int64_t>(budget_bytes / per_block, INT32_MAX));
}

}  // namespace duet
