// Sessions and the KV pool: every way a session ends gives its blocks back; a full pool refuses
// clearly and leaves the other sessions as they were; a one-row step through the pipeline (2
// stages) equals the monolithic backbone.
#include "../common/torch_doctest.hpp"

#include "cloud/pipeline.hpp"
#include "cloud/session_table.hpp"
#include "common/backbone.hpp"
#include "protocol/errors.hpp"

using namespace duet;
using namespace duet::cloud;
using protocol::ErrorCode;
using protocol::ProtocolError;

namespace {

std::string fixture(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }

std::vector<StageSpec> two_stages() {
  StageSpec a, b;
  a.device = b.device = "cpu";
  a.first = 0;
  a.last = b.first = 1;
  b.last = 3;
  return {a, b};
}

ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode::internal;  // "no error" for these tests
}

}  // namespace

TEST_CASE("1,000 sessions opened and abandoned leave the pool empty") {
  Checkpoint ck(fixture("llama_gqa"));
  Pipeline pipe(ck, two_stages(), torch::kFloat, KvSizing{int64_t(1) << 20, 0});
  SessionLimits lim;
  lim.max_sessions = 8;
  lim.max_positions = 128;
  lim.idle_timeout = std::chrono::milliseconds(1000);
  SessionTable table(pipe, lim);
  auto& alloc = pipe.allocator();
  const auto H = ck.config().hidden_size;
  for (int i = 0; i < 1000; ++i) {
    const std::string owner = "client" + std::to_string(i % 3);
    Session& s = table.open(owner, 0);
    const uint32_t n = 1 + i % 40;
    table.reserve(s, 0, n);
    if (i % 50 == 0) {  // now and then a real step
      StepBatch b;
      b.rows.push_back({&s.table, 0, n});
      pipe.forward(b, torch::randn({n, H}));
      table.commit(s, 0, n);
    }
    if (i % 4 == 0) REQUIRE(table.close(owner, s.id));
    else if (i % 4 == 1) table.close_all_of(owner);  // the client died
    else if (i % 4 == 2) table.expire(Clock::now() + std::chrono::seconds(5));  // went idle
    else {  // a refused request, then abandoned
      REQUIRE(code_of([&] { table.reserve(s, 5000, 1); }) == ErrorCode::position_gap);
      table.close_all_of(owner);
    }
  }
  REQUIRE(table.size() == 0);
  REQUIRE(alloc.used_blocks() == 0);
}

TEST_CASE("a full pool refuses new sessions and growth clearly; the others are unchanged") {
  Checkpoint ck(fixture("llama_gqa"));
  // 5 blocks: scratch + 4 of 16 positions
  const int64_t per_block = Pipeline(ck, two_stages(), torch::kFloat).kv_bytes_per_position() * kKvBlockSize;
  Pipeline pipe(ck, two_stages(), torch::kFloat, KvSizing{5 * per_block, 0});
  REQUIRE(pipe.allocator().num_blocks() == 5);
  SessionLimits lim;
  lim.kv_budget_bytes = 5 * per_block;
  SessionTable table(pipe, lim);
  const auto H = ck.config().hidden_size;
  torch::manual_seed(3);
  auto xa = torch::randn({40, H});
  Session& a = table.open("a", 0);
  table.reserve(a, 0, 40);  // 3 blocks
  StepBatch b;
  b.rows.push_back({&a.table, 0, 40});
  auto ya = pipe.forward(b, xa);
  table.commit(a, 0, 40);
  Session& c = table.open("c", 0);  // the last block
  REQUIRE(code_of([&] { table.open("d", 0); }) == ErrorCode::kv_memory_limit);
  REQUIRE(code_of([&] { table.reserve(c, 0, 17); }) == ErrorCode::kv_memory_limit);
  REQUIRE(c.table.blocks.size() == 1);  // all or nothing
  REQUIRE(code_of([&] { table.reserve(a, 40, 9); }) == ErrorCode::kv_memory_limit);
  REQUIRE(a.length == 40);
  // a's history is intact: its next position equals the monolithic backbone's
  LocalBackbone mono(ck, LoadOptions{}, 128);
  auto want = mono.forward(torch::cat({xa, xa.narrow(0, 0, 1)}), 0, true);
  table.reserve(a, 40, 1);
  StepBatch d;
  d.rows.push_back({&a.table, 40, 1});
  auto got = pipe.forward(d, xa.narrow(0, 0, 1));
  table.commit(a, 40, 1);
  REQUIRE(((got - want).norm() / want.norm()).item<double>() <= 1e-5);
  REQUIRE(((ya.narrow(0, 39, 1) - mono.forward(xa, 0, true)).norm()).item<double>() <= 1e-4);
  REQUIRE(table.close("c", c.id));
  Session& e = table.open("e", 0);
  REQUIRE(e.table.blocks.size() == 1);
  REQUIRE(pipe.describe().find("KV blocks") != std::string::npos);
}
