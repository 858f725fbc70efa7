// The fuzzer's seed corpus (tests/protocol/corpus/) holds one valid message per kind. This test
// keeps it valid as the protocol changes; with DUET_WRITE_CORPUS=DIR it (re)writes the seeds.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "fuzz_frames.hpp"
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;
namespace fs = std::filesystem;

namespace {

std::map<std::string, RawMessage> seeds() {
  std::map<std::string, RawMessage> s;
  s["hello"] = raw(1, sample_hello());
  s["hello_reply"] = raw(1, sample_hello_reply());
  s["open_session"] = raw(2, OpenSession{0});
  s["session_opened"] = raw(2, SessionOpened{42, 2048});
  s["forward_last"] = raw_forward(sample_forward(2, 4));
  Forward all = sample_forward(1, 4);
  all.output = OutputMode::all;
  all.hidden.dtype = WireDtype::f32;
  s["forward_all_fp32"] = raw(4, all, {tensor_bytes_of(all.hidden, 0x3f)});
  s["result"] = raw(5, sample_timed_result(), {tensor_bytes_of(sample_result().hidden, 0x22)});
  s["result_untimed"] = raw(5, sample_result(), {tensor_bytes_of(sample_result().hidden, 0x22)});
  s["close_session"] = raw(6, CloseSession{42});
  s["session_closed"] = raw(6, SessionClosed{42});
  s["error"] = raw(7, Error{ErrorCode::position_gap, "forward starts at 12; session holds 11"});
  return s;
}

}  // namespace

TEST_CASE("fuzz seed corpus: one valid message per kind") {
  if (const char* out = std::getenv("DUET_WRITE_CORPUS")) {
    fs::create_directories(out);
    for (const auto& [name, msg] : seeds())
      std::ofstream(fs::path(out) / name, std::ios::binary) << fuzz::join_frames(msg.frames);
  }
  const fs::path dir = DUET_PROTOCOL_CORPUS_DIR;
  std::set<MessageKind> kinds;
  for (const auto& [name, msg] : seeds()) {
    CAPTURE(name);
    std::ifstream in(dir / name, std::ios::binary);
    REQUIRE(in.good());
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    const auto frames =
        fuzz::split_frames(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
    CHECK(frames.size() == msg.frames.size());
    const auto d = decode(frames);
    CHECK(d.body == msg.decode().body);
    kinds.insert(d.kind);
  }
  CHECK(kinds.size() == static_cast<std::size_t>(kMaxMessageKind));  // every kind has a seed
}
