#pragma once
// The paged KV cache's bookkeeping (no LibTorch: the session table and scheduler use it; the
// storage is common/kv_pool.hpp). Keys and values of every sequence live in fixed-size blocks of one pool per
// stage; a sequence owns a BlockTable listing its blocks. One KvBlockAllocator hands out block ids
// for a whole daemon (or LocalBackbone): the same ids index every layer of every stage's pool, so
// one table describes a session everywhere.
//
// Block 0 is reserved as scratch: padded rows of a bucketed (CUDA graph) step write there and the
// padding of gathered histories reads from there, so it never holds a sequence.
//
// Not thread-safe: one thread (the daemon's compute/scheduler thread) owns the allocator.
#include <cstdint>
#include <vector>

namespace duet {

// 16 positions per block: small enough that the last, partly filled block of each sequence
// wastes at most 15 positions (64 sessions: < 1k positions in all), large enough that a block
// table stays short (4096 positions = 256 ids) and that a gathered block is 16 contiguous rows of
// [kv_heads, head_dim] (>= 2 KiB for usual heads in bf16), which a fused paged-attention kernel
// can read in full transactions. vLLM's default is the same.
inline constexpr int64_t kKvBlockSize = 16;

// A sequence's blocks, in position order: position p lives in blocks[p / block_size] at offset
// p % block_size. `length` is the positions that hold the sequence; blocks may cover more.
struct BlockTable {
  std::vector<int32_t> blocks;
  int64_t length = 0;
};

class KvBlockAllocator {
 public:
  static constexpr int32_t kScratchBlock = 0;

  // num_blocks includes the scratch block (so at least 2).
  KvBlockAllocator(int64_t num_blocks, int64_t block_size = kKvBlockSize);

  // Gives `table` blocks for positions [0, positions) that it lacks. All or nothing: false (and
  // the table unchanged) when the free blocks do not suffice. Does not change table.length.
  bool ensure(BlockTable& table, int64_t positions);
  // Returns every block of the table; the table is left empty (length 0).
  void release(BlockTable& table);
  // Keeps positions [0, length): table.length = min(table.length, length), and blocks past
  // ceil(length / block_size) go back to the pool. For rewinds: positions at or after `length`
  // are rewritten by the next step (a rejected draft, a replay).
  void truncate(BlockTable& table, int64_t length);

  int64_t num_blocks() const { return num_blocks_; }
  int64_t block_size() const { return block_size_; }
  int64_t usable_blocks() const { return num_blocks_ - 1; }  // all but scratch
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size()); }
  int64_t used_blocks() const { return usable_blocks() - free_blocks(); }
  // 1 + the highest block id ever handed out: a pool's storage must cover this many blocks
  // (ids are handed out lowest first, so this tracks peak use).
  int64_t high_water() const { return high_water_; }

  static int64_t blocks_for(int64_t positions, int64_t block_size = kKvBlockSize) {
    return (positions + block_size - 1) / block_size;
  }
  // Blocks (scratch included) whose KV fits `budget_bytes`, given the KV bytes per position
  // over all layers of all stages; at least 2.
  static int64_t blocks_in_budget(int64_t budget_bytes, int64_t kv_bytes_per_position,
                                  int64_t block_size = kKvBlockSize);

 private:
  int64_t num_blocks_, block_size_;
  int64_t high_water_ = 1;
  std::vector<int32_t> free_;  // a min-heap: the lowest free id is handed out first
};

}  // namespace duet
