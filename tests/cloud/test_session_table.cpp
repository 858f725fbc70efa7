// KV pool accounting through the session table: no block leaked after opens, closes, expiries,
// refused requests; a full pool refuses clearly and leaves the others as they were; key quotas.
#include <doctest/doctest.h>

#include <thread>

#include "cloud/session_table.hpp"
#include "protocol/errors.hpp"

using namespace duet;
using namespace duet::cloud;
using duet::protocol::ErrorCode;
using duet::protocol::ProtocolError;

namespace {
ErrorCode code_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ProtocolError& e) {
    return e.code();
  }
  return ErrorCode::ok;
}
}  // namespace

TEST_CASE("1,000 sessions opened and abandoned (expired) or closed leave the pool empty") {
  KvBlockAllocator pool(1 + 64);
  SessionLimits lim;
  lim.max_sessions = 8;
  lim.max_positions = 512;
  lim.idle_timeout = std::chrono::milliseconds(0);
  SessionTable t(pool, lim);
  for (int i = 0; i < 1000; ++i) {
    Session& s = t.open("key:k" + std::to_string(i % 3), 0);
    t.reserve(s, 0, static_cast<uint32_t>(1 + i % 40));  // a prompt of up to 40 positions
    if (i % 2) REQUIRE(t.close(s.owner, s.id));
    else t.expire(Clock::now() + std::chrono::milliseconds(1));  // abandoned: idle past the timeout
    REQUIRE(t.size() == 0);
    REQUIRE(pool.used_blocks() == 0);
  }
  REQUIRE(t.usage().empty());
}

TEST_CASE("a full pool refuses a new session and growth with kv_memory_limit; the others are unchanged") {
  KvBlockAllocator pool(1 + 4);  // 4 usable blocks of 16 positions
  SessionLimits lim;
  lim.max_positions = 1024;
  SessionTable t(pool, lim);
  Session& a = t.open("key:a", 0);
  t.reserve(a, 0, 40);  // 3 blocks
  a.kv.length = 40;
  Session& b = t.open("key:b", 0);  // the last block
  REQUIRE(pool.free_blocks() == 0);
  REQUIRE(code_of([&] { t.open("key:c", 0); }) == ErrorCode::kv_memory_limit);
  REQUIRE(t.size() == 2);
  REQUIRE(code_of([&] { t.reserve(a, 40, 20); }) == ErrorCode::kv_memory_limit);
  REQUIRE(a.kv.blocks.size() == 3);
  REQUIRE(a.kv.length == 40);
  REQUIRE(code_of([&] { t.reserve(b, 0, 16); }) == ErrorCode::ok);  // within its block
  REQUIRE(code_of([&] { t.reserve(a, 41, 1); }) == ErrorCode::position_gap);
  REQUIRE(t.close("key:b", b.id));
  REQUIRE(code_of([&] { t.reserve(a, 40, 20); }) == ErrorCode::ok);
  t.close_all();
  REQUIRE(pool.used_blocks() == 0);
}

TEST_CASE("sessions belong to their key; key quotas on sessions and KV share") {
  KvBlockAllocator pool(1 + 100);
  SessionLimits lim;
  lim.default_quota.max_sessions = 2;
  lim.quotas["small"] = {1, 0.1};  // 10 blocks
  SessionTable t(pool, lim);
  Session& a = t.open("key:big", 0);
  REQUIRE(code_of([&] { t.get("key:other", a.id); }) == ErrorCode::unknown_session);
  REQUIRE_FALSE(t.close("key:other", a.id));
  t.open("key:big", 0);
  REQUIRE(code_of([&] { t.open("key:big", 0); }) == ErrorCode::quota_exceeded);
  Session& s = t.open("key:small", 0);
  REQUIRE(code_of([&] { t.open("key:small", 0); }) == ErrorCode::quota_exceeded);
  REQUIRE(code_of([&] { t.reserve(s, 0, 160); }) == ErrorCode::ok);      // 10 blocks
  s.kv.length = 160;
  REQUIRE(code_of([&] { t.reserve(s, 160, 16); }) == ErrorCode::quota_exceeded);
  REQUIRE(t.usage().at("key:small").blocks == 10);
  REQUIRE(t.usage().at("key:big").sessions == 2);
}

TEST_CASE("commit and rollback are where a step's outcome changes lengths; opens past the limit are refused") {
  KvBlockAllocator pool(1 + 8);
  SessionLimits lim;
  lim.max_positions = 64;
  SessionTable t(pool, lim);
  REQUIRE(code_of([&] { t.open("key:a", 65); }) == ErrorCode::position_limit);
  REQUIRE(t.size() == 0);
  Session& a = t.open("key:a", 0);
  REQUIRE(a.max_positions == 64);
  t.reserve(a, 0, 20);
  t.commit(a.id, 20, Clock::now());
  REQUIRE(a.kv.length == 20);
  t.reserve(a, 20, 5);
  t.rollback(a.id, 20);  // the step that ran [20, 25) failed
  REQUIRE(a.kv.length == 20);
  t.rollback(a.id, 10);  // a failed rewind keeps less
  REQUIRE(a.kv.length == 10);
  t.commit(12345, 3, Clock::now());  // closed meanwhile: nothing happens
  // a request larger than the whole pool says so
  try {
    t.reserve(a, 10, 54);
    t.reserve(a, 0, 64);
  } catch (const ProtocolError& e) {
    FAIL("64 positions fit 8 blocks of 16: " << e.what());
  }
  KvBlockAllocator small(1 + 2);
  SessionTable u(small, lim);
  Session& b = u.open("key:b", 0);
  try {
    u.reserve(b, 0, 60);
    FAIL("60 positions do not fit 2 blocks");
  } catch (const ProtocolError& e) {
    REQUIRE(e.code() == ErrorCode::kv_memory_limit);
    REQUIRE(std::string(e.what()).find("more than the daemon's whole KV pool") != std::string::npos);
  }
}
