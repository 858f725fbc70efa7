// Round trips: every kind survives encode -> zmq frames -> decode unchanged, tensor bytes
// travel in their own frame, and the zero-copy frame builder hands the buffer back.
#include <doctest/doctest.h>

#include <atomic>
#include <cstring>

#include "protocol/dtype.hpp"
#include "protocol/errors.hpp"
#include "protocol/messages.hpp"
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;

namespace {

template <class T>
T round_trip(const T& m, std::uint64_t rid = 99) {
  auto frames = encode(rid, m);
  REQUIRE(frames.size() == 1);
  auto d = decode(frames);
  CHECK(d.kind == kind_of(MessageBody(m)));
  CHECK(d.request_id == rid);
  CHECK(d.tensors.empty());
  return d.template as<T>();
}

}  // namespace

TEST_CASE("dtype names, sizes and parsing") {
  CHECK(element_size(WireDtype::f32) == 4);
  CHECK(element_size(WireDtype::f16) == 2);
  CHECK(element_size(WireDtype::bf16) == 2);
  for (auto d : {WireDtype::f32, WireDtype::f16, WireDtype::bf16, WireDtype::i8})
    CHECK(parse_dtype(dtype_name(d)) == d);
  CHECK_FALSE(parse_dtype("float32").has_value());
  CHECK_FALSE(parse_dtype("").has_value());
  CHECK_PROTOCOL_ERROR(parse_dtype_or_throw("int4"), ErrorCode::bad_dtype);
  CHECK(element_size(WireDtype::i8) == 1);
  CHECK(row_overhead_bytes(WireDtype::i8) == 4);
  CHECK(row_overhead_bytes(WireDtype::bf16) == 0);
}

TEST_CASE("error codes have stable numbers and names") {
  CHECK(static_cast<int>(ErrorCode::ok) == 0);
  CHECK(static_cast<int>(ErrorCode::bad_message) == 1);
  CHECK(static_cast<int>(ErrorCode::shutting_down) == 15);
  CHECK(static_cast<int>(ErrorCode::handshake_required) == 16);
  CHECK(static_cast<int>(ErrorCode::session_busy) == 17);
  CHECK(static_cast<int>(ErrorCode::quota_exceeded) == 18);
  CHECK(to_string(ErrorCode::quota_exceeded) == "quota_exceeded");
  CHECK(static_cast<int>(ErrorCode::non_finite) == 19);
  CHECK(to_string(ErrorCode::server_busy) == "server_busy");
  CHECK(static_cast<int>(ErrorCode::server_busy) == 20);
  CHECK(static_cast<int>(ErrorCode::stage_unavailable) == 21);
  CHECK(to_string(ErrorCode::frame_size_mismatch) == "frame_size_mismatch");
  CHECK(to_string(static_cast<ErrorCode>(999)) == "unknown_error");
  CHECK_FALSE(is_known(static_cast<ErrorCode>(999)));
  CHECK(is_known(ErrorCode::kv_memory_limit));
  ProtocolError e(ErrorCode::too_large, "too big");
  CHECK(e.code() == ErrorCode::too_large);
  CHECK(std::string(e.what()) == "too big");
  CHECK(printable("a\nb\x01") == "a\\x0ab\\x01");
  CHECK(printable(std::string(100, 'x'), 8) == "xxxxxxxx...");
}

TEST_CASE("message kinds: hello keeps number 1, variant order follows kinds") {
  CHECK(static_cast<int>(MessageKind::hello) == 1);
  CHECK(kind_of(MessageBody(Hello{})) == MessageKind::hello);
  CHECK(kind_of(MessageBody(Error{})) == MessageKind::error);
  CHECK(kind_of(MessageBody(Forward{})) == MessageKind::forward);
  CHECK(tensor_frame_count(MessageKind::forward) == 1);
  CHECK(tensor_frame_count(MessageKind::result) == 1);
  CHECK(tensor_frame_count(MessageKind::hello) == 0);
  CHECK(to_string(MessageKind::session_closed) == "session_closed");
}

TEST_CASE("round trip: header-only kinds") {
  CHECK(round_trip(sample_hello()) == sample_hello());
  CHECK(round_trip(sample_hello_reply()) == sample_hello_reply());
  CHECK(round_trip(OpenSession{0}) == OpenSession{0});
  CHECK(round_trip(OpenSession{4096}) == OpenSession{4096});
  CHECK(round_trip(SessionOpened{0xfedcba9876543210ull, 2048}) ==
        SessionOpened{0xfedcba9876543210ull, 2048});
  CHECK(round_trip(CloseSession{7}) == CloseSession{7});
  CHECK(round_trip(SessionClosed{UINT64_MAX}) == SessionClosed{UINT64_MAX});
  CHECK(round_trip(Error{ErrorCode::position_gap, "start_pos 5 but session holds 3"}) ==
        Error{ErrorCode::position_gap, "start_pos 5 but session holds 3"});
  // extreme values of every integer width
  HelloReply r = sample_hello_reply();
  r.limits = ServerLimits{UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX};
  r.hidden_size = UINT32_MAX;
  CHECK(round_trip(r, UINT64_MAX) == r);
  Hello h = sample_hello();
  h.client_name = "";
  h.wire_dtype = WireDtype::f16;
  CHECK(round_trip(h, 0) == h);
}

TEST_CASE("round trip: forward and result carry their tensor in its own frame") {
  Forward f = sample_forward(3, 5);
  f.output = OutputMode::all;
  std::vector<std::uint8_t> hidden(3 * 5 * 2);
  for (std::size_t i = 0; i < hidden.size(); ++i) hidden[i] = static_cast<std::uint8_t>(i);
  auto frames = encode(1, f, tensor_frame_copy(hidden.data(), hidden.size()));
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].size() < 200);  // tensor bytes are not in the header
  CHECK(frames[1].size() == hidden.size());
  hidden.assign(hidden.size(), 0);  // copy variant: the caller's buffer is free at once
  auto d = decode(frames);
  CHECK(d.kind == MessageKind::forward);
  CHECK(d.as<Forward>() == f);
  REQUIRE(d.tensors.size() == 1);
  CHECK(d.tensors[0].size == 30);
  CHECK(d.tensors[0].data == static_cast<const std::byte*>(frames[1].data()));  // a view, no copy
  CHECK(std::to_integer<int>(d.tensors[0].data[29]) == 29);

  Result r = sample_result();
  std::vector<std::uint8_t> out(8, 0x42);
  auto rf = encode(2, r, tensor_frame_copy(out.data(), out.size()));
  auto rd = decode(rf);
  CHECK(rd.as<Result>() == r);
  CHECK(rd.tensors.at(0).size == 8);

  // fp32 with a realistic hidden size
  Forward big = sample_forward(1, 4096);
  big.hidden.dtype = WireDtype::f32;
  std::vector<float> act(4096, 1.5f);
  auto bf = encode(3, big, tensor_frame_copy(act.data(), act.size() * sizeof(float)));
  auto bd = decode(bf);
  float back;
  std::memcpy(&back, bd.tensors[0].data + 4 * 4095, 4);
  CHECK(back == 1.5f);
}

TEST_CASE("zero-copy tensor frame calls the free callback once the frame is gone") {
  static std::atomic<int> freed{0};
  freed = 0;
  auto* buf = new std::uint16_t[8]{1, 2, 3, 4, 5, 6, 7, 8};
  {
    Forward f = sample_forward(2, 4);
    auto frames = encode(5, f,
                         tensor_frame_zero_copy(buf, 16, [](void* data, void*) {
                           delete[] static_cast<std::uint16_t*>(data);
                           ++freed;
                         }, nullptr));
    CHECK(frames[1].data() == buf);  // same memory, not copied
    auto d = decode(frames);
    CHECK(d.tensors[0].data == reinterpret_cast<const std::byte*>(buf));
    CHECK(freed == 0);
  }
  CHECK(freed == 1);
}

TEST_CASE("append_message puts a routing identity first; as<T>() refuses another kind") {
  std::vector<zmq::message_t> out;
  out.emplace_back(std::string_view("peer-1"));
  append_message(out, 11, CloseSession{3});
  REQUIRE(out.size() == 2);
  auto d = decode(out.data() + 1, out.size() - 1);
  CHECK(d.as<CloseSession>().session_id == 3);
  CHECK_PROTOCOL_ERROR(d.as<Forward>(), ErrorCode::bad_message);
}

TEST_CASE("encode refuses what the peer would refuse") {
  Forward f = sample_forward(2, 4);
  CHECK_PROTOCOL_ERROR(encode(1, f, zmq::message_t(15)), ErrorCode::frame_size_mismatch);
  f.hidden.shape = {3, 4};
  CHECK_PROTOCOL_ERROR(encode(1, f, zmq::message_t(24)), ErrorCode::bad_shape);
  std::vector<zmq::message_t> sink;
  CHECK_PROTOCOL_ERROR(append_message(sink, 1, sample_forward()),
                       ErrorCode::internal);  // tensor frame missing
  Hello h = sample_hello();
  h.model_fingerprint = "abc";
  CHECK_PROTOCOL_ERROR(encode(1, h), ErrorCode::bad_message);
  h = sample_hello();
  h.client_name = std::string(200, 'x');
  CHECK_PROTOCOL_ERROR(encode(1, h), ErrorCode::bad_message);
}

TEST_CASE("our own long or multi-line error sentences are cut and cleaned, not refused") {
  Error e{ErrorCode::internal, std::string(5000, 'y') + "\nsecond line"};
  auto d = decode(encode(1, e));
  CHECK(d.as<Error>().message.size() == kMaxErrorMessageChars);
  Error e2{ErrorCode::internal, "line one\nline two"};
  CHECK(decode(encode(1, e2)).as<Error>().message == "line one line two");
}

TEST_CASE("an error code this build does not know is kept, not refused") {
  Error e{static_cast<ErrorCode>(4242), "from the future"};
  auto d = decode(encode(1, e));
  CHECK(static_cast<int>(d.as<Error>().code) == 4242);
  CHECK(to_string(d.as<Error>().code) == "unknown_error");
}

TEST_CASE("edge blocks in the handshake: optional fields, sent only when not 0, and the split check") {
  Hello h = sample_hello();
  const std::string plain = encode_header(1, h);
  h.edge_blocks = 2;
  CHECK(round_trip(h) == h);
  CHECK(round_trip(h).edge_blocks == 2);
  CHECK(encode_header(1, h).size() > plain.size());  // the field is on the wire only when set
  CHECK(round_trip(sample_hello()).edge_blocks == 0);
  HelloReply r = sample_hello_reply();
  r.first_block = 2;
  CHECK(round_trip(r) == r);
  CHECK(round_trip(sample_hello_reply()).first_block == 0);
  CHECK_NOTHROW(check_block_split(0, 0));
  CHECK_NOTHROW(check_block_split(3, 3));
  try {
    check_block_split(0, 2);
    FAIL("an edge keeping no block was matched with a daemon starting at block 2");
  } catch (const ProtocolError& e) {
    CHECK(e.code() == ErrorCode::model_mismatch);
    CHECK(std::string(e.what()).find("--edge-blocks 2") != std::string::npos);
  }
}
