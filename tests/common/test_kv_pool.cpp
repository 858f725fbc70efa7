// The paged KV pool's bookkeeping: allocation, release, truncation, all-or-nothing refusals.
#include "torch_doctest.hpp"

#include "common/kv_pool.hpp"

using namespace duet;

TEST_CASE("KvBlockAllocator: ensure, truncate, release; block 0 never handed out") {
  KvBlockAllocator a(9, 4);  // 8 usable blocks of 4 positions
  REQUIRE(a.usable_blocks() == 8);
  REQUIRE(a.free_blocks() == 8);
  BlockTable t;
  REQUIRE(a.ensure(t, 1));
  REQUIRE(t.blocks.size() == 1);
  REQUIRE(a.ensure(t, 4));  // same block
  REQUIRE(t.blocks.size() == 1);
  REQUIRE(a.ensure(t, 10));
  REQUIRE(t.blocks == std::vector<int32_t>{1, 2, 3});  // lowest ids first
  REQUIRE(t.length == 0);  // ensure does not move the length
  t.length = 10;
  REQUIRE(a.used_blocks() == 3);
  a.truncate(t, 5);  // keep positions [0, 5): two blocks
  REQUIRE(t.length == 5);
  REQUIRE(t.blocks.size() == 2);
  REQUIRE(a.used_blocks() == 2);
  a.truncate(t, 8);  // never lengthens
  REQUIRE(t.length == 5);
  a.release(t);
  REQUIRE(t.blocks.empty());
  REQUIRE(t.length == 0);
  REQUIRE(a.used_blocks() == 0);
  REQUIRE(a.high_water() == 4);
}

TEST_CASE("KvBlockAllocator: out of blocks is all or nothing") {
  KvBlockAllocator a(5, 16);  // 4 usable
  BlockTable x, y;
  REQUIRE(a.ensure(x, 40));  // 3 blocks
  REQUIRE_FALSE(a.ensure(y, 20));  // needs 2, 1 free
  REQUIRE(y.blocks.empty());
  REQUIRE(a.free_blocks() == 1);
  REQUIRE_FALSE(a.ensure(x, 80));  // needs 2 more
  REQUIRE(x.blocks.size() == 3);
  REQUIRE(a.ensure(y, 16));
  REQUIRE(a.free_blocks() == 0);
  a.release(x);
  REQUIRE(a.ensure(y, 64));
  REQUIRE(a.used_blocks() == 4);
}

TEST_CASE("KvBlockAllocator: sizing from a byte budget") {
  // 6 KiB per position, 16 positions a block: 2 MiB hold 21 blocks
  REQUIRE(KvBlockAllocator::blocks_in_budget(2 << 20, 6 << 10, 16) == 21);
  REQUIRE(KvBlockAllocator::blocks_in_budget(1, 6 << 10, 16) == 2);
  REQUIRE(KvBlockAllocator::blocks_for(0) == 0);
  REQUIRE(KvBlockAllocator::blocks_for(17, 16) == 2);
}

TEST_CASE("KvPool: zeroed storage, flattened views, growth keeps contents") {
  KvPool p({{2, 4}, {1, 8}}, 4, 3, torch::kFloat, torch::kCPU);
  REQUIRE(p.blocks() == 3);
  REQUIRE(p.bytes_per_block() == 2 * 4 * (2 * 4 + 1 * 8) * 4);
  auto l0 = p.layer(0);
  REQUIRE(l0.k.sizes() == torch::IntArrayRef({12, 2, 4}));
  REQUIRE(l0.k.eq(0).all().item<bool>());
  l0.k.index_fill_(0, torch::tensor({5}), 3.0);
  REQUIRE(p.grow(7));
  REQUIRE_FALSE(p.grow(5));
  auto g = p.layer(0).k;
  REQUIRE(g.size(0) == 28);
  REQUIRE(g[5].eq(3).all().item<bool>());
  REQUIRE(g.narrow(0, 12, 16).eq(0).all().item<bool>());
  REQUIRE(p.layer(1).v.sizes() == torch::IntArrayRef({28, 1, 8}));
}
