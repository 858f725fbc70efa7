// Every way a peer's message can be wrong yields ProtocolError with the code a reply would
// carry: malformed msgpack, limits, envelope, field types, tensor descriptors and frames, and
// the checks that need the handshake or the session's state.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>
#include <vector>

#include "protocol/messages.hpp"
#include "protocol/validate.hpp"
#include "test_helpers.hpp"

using namespace duet::protocol;
using namespace duet::protocol::test;

namespace {

RawMessage header_only(std::string bytes) { return RawMessage{{std::move(bytes)}}; }

msgpack::object str_obj(const std::string& s, msgpack::zone& z) { return msgpack::object(s, z); }

}  // namespace

TEST_CASE("malformed msgpack and trailing bytes") {
  const std::string good = encode_header(1, sample_hello());
  CHECK_PROTOCOL_ERROR(header_only("").decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(header_only("\xc1").decode(), ErrorCode::bad_message);  // reserved byte
  CHECK_PROTOCOL_ERROR(header_only(good.substr(0, good.size() - 1)).decode(),
                       ErrorCode::bad_message);  // truncated
  CHECK_PROTOCOL_ERROR(header_only(good.substr(0, 3)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(header_only(good + '\0').decode(), ErrorCode::bad_message);  // trailing
  CHECK_PROTOCOL_ERROR(header_only(good + good).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(header_only("\x93\x01\x02\x03").decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(header_only("\x2a").decode(), ErrorCode::bad_message);  // not an array
}

TEST_CASE("structural limits: header bytes, huge declared sizes, nesting, bin/ext") {
  std::string big = encode_header(1, sample_hello());
  big.resize(kMaxHeaderBytes + 1, '\0');
  CHECK_PROTOCOL_ERROR(header_only(big).decode(), ErrorCode::too_large);
  // a narrower cap from the caller
  DecodeLimits tight;
  tight.max_header_bytes = 16;
  CHECK_PROTOCOL_ERROR(raw(1, sample_hello()).decode(tight), ErrorCode::too_large);
  // array32 / map32 / str32 declaring 2^32-1 entries: refused before allocating anything
  CHECK_PROTOCOL_ERROR(header_only("\xdd\xff\xff\xff\xff").decode(), ErrorCode::too_large);
  CHECK_PROTOCOL_ERROR(header_only("\xdf\xff\xff\xff\xff").decode(), ErrorCode::too_large);
  // a str32 declaring 4 GiB is only "incomplete": msgpack waits for the bytes, allocating none
  CHECK_PROTOCOL_ERROR(header_only("\xdb\xff\xff\xff\xff").decode(), ErrorCode::bad_message);
  // bin and ext values are never part of a header
  CHECK_PROTOCOL_ERROR(header_only(std::string("\xc4\x01\x00", 3)).decode(), ErrorCode::too_large);
  CHECK_PROTOCOL_ERROR(header_only(std::string("\xd4\x01\x00", 3)).decode(), ErrorCode::too_large);
  // nesting deeper than any header: [[[[[ ]]]]]
  CHECK_PROTOCOL_ERROR(header_only("\x91\x91\x91\x91\x91\x90").decode(), ErrorCode::too_large);
  // a string field longer than any header string
  Hello h = sample_hello();
  auto m = edited(raw(1, h), [](msgpack::object& root, msgpack::zone& z) {
    field(body_of(root), "client_name") = str_obj(std::string(2000, 'n'), z);
  });
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::too_large);
  // within msgpack's limit but over the field's own limit
  m = edited(raw(1, h), [](msgpack::object& root, msgpack::zone& z) {
    field(body_of(root), "client_name") = str_obj(std::string(kMaxNameChars + 1, 'n'), z);
  });
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::bad_message);
}

TEST_CASE("frame count and total size") {
  CHECK_PROTOCOL_ERROR(decode(std::vector<FrameView>{}), ErrorCode::bad_message);
  RawMessage m = raw(1, sample_hello());
  m.frames.resize(kMaxFramesPerMessage + 1, "x");
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::too_large);
  std::vector<zmq::message_t> zframes(kMaxFramesPerMessage + 1);
  CHECK_PROTOCOL_ERROR(decode(zframes), ErrorCode::too_large);
  // a header-only kind with a tensor frame, a forward without one or with two
  RawMessage extra = raw(1, sample_hello(), {"abcd"});
  CHECK_PROTOCOL_ERROR(extra.decode(), ErrorCode::bad_message);
  RawMessage missing = raw(1, sample_forward());
  CHECK_PROTOCOL_ERROR(missing.decode(), ErrorCode::bad_message);
  RawMessage two = raw_forward(sample_forward());
  two.frames.push_back(two.frames[1]);
  CHECK_PROTOCOL_ERROR(two.decode(), ErrorCode::bad_message);
  // total bytes over the caller's limit
  DecodeLimits small;
  small.max_message_bytes = 64;
  Forward f = sample_forward(8, 4);  // 64 tensor bytes + header
  CHECK_PROTOCOL_ERROR(raw_forward(f).decode(small), ErrorCode::too_large);
}

TEST_CASE("envelope: magic, version, kind, request id") {
  const RawMessage good = raw(1, sample_hello());
  CHECK_NOTHROW(good.decode());
  auto set = [&](int index, msgpack::object value) {
    return edited(good, [=](msgpack::object& root, msgpack::zone&) { root.via.array.ptr[index] = value; });
  };
  msgpack::zone z;
  CHECK_PROTOCOL_ERROR(set(0, str_obj("DUET", z)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(0, msgpack::object(7)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(1, msgpack::object(kProtocolVersion + 1)).decode(), ErrorCode::unsupported_version);
  CHECK_PROTOCOL_ERROR(set(1, msgpack::object(kProtocolVersion - 1)).decode(), ErrorCode::unsupported_version);
  CHECK_PROTOCOL_ERROR(set(1, msgpack::object(0)).decode(), ErrorCode::unsupported_version);
  CHECK_PROTOCOL_ERROR(set(1, str_obj("1", z)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(2, msgpack::object(0)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(2, msgpack::object(10)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(2, msgpack::object(-1)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(2, msgpack::object(1.5)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(3, msgpack::object(-5)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(set(4, msgpack::object(5)).decode(), ErrorCode::bad_message);
  // a body that belongs to another kind: kind says close_session, body is hello's
  CHECK_PROTOCOL_ERROR(set(2, msgpack::object(7)).decode(), ErrorCode::bad_message);
  // envelope with 4 or 6 entries
  auto four = edited(good, [](msgpack::object& root, msgpack::zone&) { root.via.array.size = 4; });
  CHECK_PROTOCOL_ERROR(four.decode(), ErrorCode::bad_message);
}

TEST_CASE("field types, ranges, missing, unknown and duplicate fields") {
  const RawMessage fwd = raw_forward(sample_forward());
  CHECK_NOTHROW(fwd.decode());
  auto with = [&](const std::string& key, msgpack::object value) {
    return edited(fwd, [=](msgpack::object& root, msgpack::zone&) { field(body_of(root), key) = value; });
  };
  msgpack::zone z;
  CHECK_PROTOCOL_ERROR(with("session_id", str_obj("42", z)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("session_id", msgpack::object(-42)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("session_id", msgpack::object(42.5)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("session_id", msgpack::object(true)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("session_id", msgpack::object()).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("start_pos", msgpack::object(std::uint64_t{1} << 32)).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("output", str_obj("first", z)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("output", msgpack::object(0)).decode(), ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("hidden", msgpack::object(0)).decode(), ErrorCode::bad_message);

  auto removed = edited(fwd, [](msgpack::object& root, msgpack::zone&) { remove_field(body_of(root), "start_pos"); });
  CHECK_PROTOCOL_ERROR(removed.decode(), ErrorCode::bad_message);
  auto unknown = edited(fwd, [](msgpack::object& root, msgpack::zone& zz) {
    add_field(body_of(root), zz, "priority", msgpack::object(1));
  });
  CHECK_PROTOCOL_ERROR(unknown.decode(), ErrorCode::bad_message);
  auto dup = edited(fwd, [](msgpack::object& root, msgpack::zone& zz) {
    add_field(body_of(root), zz, "session_id", msgpack::object(43));
  });
  CHECK_PROTOCOL_ERROR(dup.decode(), ErrorCode::bad_message);
  auto int_key = edited(fwd, [](msgpack::object& root, msgpack::zone&) {
    body_of(root).via.map.ptr[0].key = msgpack::object(1);
  });
  CHECK_PROTOCOL_ERROR(int_key.decode(), ErrorCode::bad_message);

  // nested maps are just as strict
  const RawMessage reply = raw(1, sample_hello_reply());
  auto limits_extra = edited(reply, [](msgpack::object& root, msgpack::zone& zz) {
    add_field(field(body_of(root), "limits"), zz, "gpus", msgpack::object(2));
  });
  CHECK_PROTOCOL_ERROR(limits_extra.decode(), ErrorCode::bad_message);
  auto limits_neg = edited(reply, [](msgpack::object& root, msgpack::zone&) {
    field(field(body_of(root), "limits"), "max_sessions") = msgpack::object(-1);
  });
  CHECK_PROTOCOL_ERROR(limits_neg.decode(), ErrorCode::bad_message);
  // error code wider than 16 bits
  auto err = edited(raw(1, Error{ErrorCode::internal, "x"}), [](msgpack::object& root, msgpack::zone&) {
    field(body_of(root), "code") = msgpack::object(70000);
  });
  CHECK_PROTOCOL_ERROR(err.decode(), ErrorCode::bad_message);
}

TEST_CASE("text fields: fingerprint format, control characters") {
  const RawMessage hello = raw(1, sample_hello());
  msgpack::zone z;
  auto with = [&](const std::string& key, msgpack::object value) {
    return edited(hello, [=](msgpack::object& root, msgpack::zone&) { field(body_of(root), key) = value; });
  };
  CHECK_PROTOCOL_ERROR(with("model_fingerprint", str_obj(std::string(64, 'A'), z)).decode(),
                       ErrorCode::bad_message);  // upper case
  CHECK_PROTOCOL_ERROR(with("model_fingerprint", str_obj(std::string(63, 'a'), z)).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("model_fingerprint", str_obj(std::string(65, 'a'), z)).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("client_name", str_obj("evil\x1b[31m", z)).decode(),
                       ErrorCode::bad_message);
  CHECK_PROTOCOL_ERROR(with("wire_dtype", str_obj("fp64", z)).decode(), ErrorCode::bad_dtype);
  CHECK_PROTOCOL_ERROR(with("wire_dtype", msgpack::object(2)).decode(), ErrorCode::bad_message);
  CHECK_NOTHROW(with("client_name", str_obj("laptop \xce\xb1", z)).decode());  // UTF-8 is fine
}

TEST_CASE("tensor descriptor: dtype, rank, rows, overflow") {
  const RawMessage fwd = raw_forward(sample_forward(2, 4));
  msgpack::zone z;
  auto desc = [&](std::function<void(msgpack::object&, msgpack::zone&)> fn) {
    return edited(fwd, [=](msgpack::object& root, msgpack::zone& zz) { fn(field(body_of(root), "hidden"), zz); });
  };
  auto shape = [&](std::vector<std::uint64_t> s) {
    return desc([=](msgpack::object& d, msgpack::zone& zz) { field(d, "shape") = msgpack::object(s, zz); });
  };
  CHECK_PROTOCOL_ERROR(desc([](msgpack::object& d, msgpack::zone& zz) {
                         field(d, "dtype") = msgpack::object(std::string("int4"), zz);
                       }).decode(),
                       ErrorCode::bad_dtype);
  // int8 on the 16 bytes of this bf16 frame: 2 x 4 int8 + 2 fp32 scales is 16 bytes too, so it decodes
  CHECK_NOTHROW(desc([](msgpack::object& d, msgpack::zone& zz) {
                  field(d, "dtype") = msgpack::object(std::string("int8"), zz);
                }).decode());
  CHECK_PROTOCOL_ERROR(shape({8}).decode(), ErrorCode::bad_shape);             // rank 1
  CHECK_PROTOCOL_ERROR(shape({2, 2, 2}).decode(), ErrorCode::bad_shape);       // rank 3
  CHECK_PROTOCOL_ERROR(shape({}).decode(), ErrorCode::bad_shape);              // rank 0
  CHECK_PROTOCOL_ERROR(shape({4, 2}).decode(), ErrorCode::bad_shape);          // rows != n_positions
  CHECK_PROTOCOL_ERROR(shape({2, 0}).decode(), ErrorCode::bad_shape);          // empty hidden
  CHECK_PROTOCOL_ERROR(shape(std::vector<std::uint64_t>(9, 1)).decode(), ErrorCode::too_large);
  // 2 * 2^62 * 2 bytes does not fit in 64 bits
  CHECK_PROTOCOL_ERROR(shape({2, std::uint64_t{1} << 62}).decode(), ErrorCode::too_large);
  CHECK_PROTOCOL_ERROR(shape({2, UINT64_MAX}).decode(), ErrorCode::too_large);
  // fits in 64 bits but the frame is tiny
  CHECK_PROTOCOL_ERROR(shape({2, std::uint64_t{1} << 40}).decode(), ErrorCode::frame_size_mismatch);
  auto shape_type = desc([](msgpack::object& d, msgpack::zone& zz) {
    field(d, "shape") = msgpack::object(std::vector<std::int64_t>{2, -4}, zz);
  });
  CHECK_PROTOCOL_ERROR(shape_type.decode(), ErrorCode::bad_message);
  // n_positions 0, and start_pos + n past 32 bits
  Forward f = sample_forward(2, 4);
  auto zero = edited(fwd, [](msgpack::object& root, msgpack::zone&) {
    field(body_of(root), "n_positions") = msgpack::object(0);
  });
  CHECK_PROTOCOL_ERROR(zero.decode(), ErrorCode::bad_shape);
  auto wrap = edited(fwd, [](msgpack::object& root, msgpack::zone&) {
    field(body_of(root), "start_pos") = msgpack::object(UINT32_MAX);
  });
  CHECK_PROTOCOL_ERROR(wrap.decode(), ErrorCode::position_limit);
  (void)f;
  // tensor_bytes itself
  CHECK(tensor_bytes(TensorDesc{WireDtype::f32, {3, 5}}) == 60);
  CHECK(tensor_bytes(TensorDesc{WireDtype::i8, {3, 5}}) == 15 + 3 * 4);  // int8 values + one fp32 scale a row
  CHECK_PROTOCOL_ERROR(tensor_bytes(TensorDesc{WireDtype::i8, {UINT64_MAX / 2, 1}}), ErrorCode::too_large);
  CHECK_PROTOCOL_ERROR(tensor_bytes(TensorDesc{WireDtype::f32, {UINT64_MAX / 2, 3}}),
                       ErrorCode::too_large);
  std::uint64_t out = 7;
  CHECK_FALSE(checked_mul(UINT64_MAX, 2, out));
  CHECK(out == 7);
  CHECK(checked_add(1, 2, out));
  CHECK(out == 3);
  CHECK_FALSE(checked_add(UINT64_MAX, 1, out));
}

TEST_CASE("tensor frame shorter or longer than its shape") {
  Forward f = sample_forward(2, 4);  // bf16: 16 bytes
  RawMessage m = raw_forward(f);
  m.frames[1].pop_back();
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::frame_size_mismatch);
  m.frames[1] += "xx";
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::frame_size_mismatch);
  m.frames[1].clear();
  CHECK_PROTOCOL_ERROR(m.decode(), ErrorCode::frame_size_mismatch);
  RawMessage r = raw(1, sample_result(), {std::string(9, 'r')});
  CHECK_PROTOCOL_ERROR(r.decode(), ErrorCode::frame_size_mismatch);
}

TEST_CASE("validate_forward: negotiated dtype, hidden size, positions per forward") {
  const ForwardContract c{4, WireDtype::bf16, 8};
  CHECK_NOTHROW(validate_forward(sample_forward(2, 4), c));
  CHECK_NOTHROW(validate_forward(sample_forward(8, 4), c));
  CHECK_PROTOCOL_ERROR(validate_forward(sample_forward(9, 4), c), ErrorCode::position_limit);
  CHECK_PROTOCOL_ERROR(validate_forward(sample_forward(2, 5), c), ErrorCode::bad_shape);
  Forward f = sample_forward(2, 4);
  f.hidden.dtype = WireDtype::f32;
  CHECK_PROTOCOL_ERROR(validate_forward(f, c), ErrorCode::bad_dtype);
  // a decoded forward straight into the daemon's check
  auto d = raw_forward(sample_forward(2, 6)).decode();
  CHECK_PROTOCOL_ERROR(validate_forward(d.as<Forward>(), c), ErrorCode::bad_shape);
}

TEST_CASE("validate_result matches the forward it answers") {
  const ForwardContract c{4, WireDtype::bf16, 8};
  Forward f = sample_forward(2, 4);  // start 10, n 2, last -> row 11
  Result r = sample_result();        // start 11, 1 row
  CHECK_NOTHROW(validate_result(r, f, c));
  Result wrong = r;
  wrong.session_id = 1;
  CHECK_PROTOCOL_ERROR(validate_result(wrong, f, c), ErrorCode::bad_message);
  wrong = r;
  wrong.start_pos = 10;
  CHECK_PROTOCOL_ERROR(validate_result(wrong, f, c), ErrorCode::bad_message);
  f.output = OutputMode::all;
  CHECK_PROTOCOL_ERROR(validate_result(r, f, c), ErrorCode::bad_message);
  Result all{42, 10, 2, 0, TensorDesc{WireDtype::bf16, {2, 4}}, std::nullopt};
  CHECK_NOTHROW(validate_result(all, f, c));
  all.hidden.shape = {2, 3};
  CHECK_PROTOCOL_ERROR(validate_result(all, f, c), ErrorCode::bad_shape);
  all.hidden = TensorDesc{WireDtype::f16, {2, 4}};
  CHECK_PROTOCOL_ERROR(validate_result(all, f, c), ErrorCode::bad_dtype);
}

TEST_CASE("check_forward_positions") {
  CHECK(check_forward_positions(0, 0, 5, 100) == 0);
  CHECK(check_forward_positions(5, 5, 1, 100) == 0);
  CHECK(check_forward_positions(8, 5, 3, 100) == 3);  // rewind over rejected drafts
  CHECK_PROTOCOL_ERROR(check_forward_positions(5, 6, 1, 100), ErrorCode::position_gap);
  CHECK_PROTOCOL_ERROR(check_forward_positions(99, 99, 2, 100), ErrorCode::position_limit);
  CHECK(check_forward_positions(99, 99, 1, 100) == 0);
  CHECK_PROTOCOL_ERROR(check_forward_positions(5, 5, 0, 100), ErrorCode::bad_shape);
  CHECK_PROTOCOL_ERROR(check_forward_positions(UINT32_MAX, UINT32_MAX, UINT32_MAX, UINT32_MAX),
                       ErrorCode::position_limit);  // no 32-bit wrap-around
}

TEST_CASE("handshake checks") {
  Hello h = sample_hello();
  CHECK_NOTHROW(check_hello(h, kFingerprint, kAllWireDtypes));
  CHECK_PROTOCOL_ERROR(check_hello(h, std::string(64, 'b'), kAllWireDtypes),
                       ErrorCode::model_mismatch);
  CHECK_PROTOCOL_ERROR(check_hello(h, kFingerprint, dtype_bit(WireDtype::f32)),
                       ErrorCode::bad_dtype);
  h.protocol_version = kProtocolVersion + 1;
  CHECK_PROTOCOL_ERROR(check_hello(h, kFingerprint, kAllWireDtypes),
                       ErrorCode::unsupported_version);

  HelloReply r = sample_hello_reply();
  CHECK_NOTHROW(check_hello_reply(r, kFingerprint, WireDtype::bf16));
  CHECK_PROTOCOL_ERROR(check_hello_reply(r, std::string(64, 'c'), WireDtype::bf16),
                       ErrorCode::model_mismatch);
  CHECK_PROTOCOL_ERROR(check_hello_reply(r, kFingerprint, WireDtype::f32), ErrorCode::bad_dtype);
  r.hidden_size = 0;
  CHECK_PROTOCOL_ERROR(check_hello_reply(r, kFingerprint, WireDtype::bf16),
                       ErrorCode::bad_message);
}

TEST_CASE("error sentences say what was seen and what was required") {
  Forward f = sample_forward(2, 4);
  RawMessage m = raw_forward(f);
  m.frames[1].pop_back();
  try {
    m.decode();
    FAIL("no throw");
  } catch (const ProtocolError& e) {
    const std::string s = e.what();
    CHECK(s.find("15") != std::string::npos);  // seen
    CHECK(s.find("16") != std::string::npos);  // required
    CHECK(s.find("[2, 4]") != std::string::npos);
  }
  try {
    validate_forward(sample_forward(9, 4), ForwardContract{4, WireDtype::bf16, 8});
    FAIL("no throw");
  } catch (const ProtocolError& e) {
    const std::string s = e.what();
    CHECK(s.find("9") != std::string::npos);
    CHECK(s.find("8") != std::string::npos);
  }
}

TEST_CASE("check_finite_frame: NaN and infinity in any wire dtype are non_finite; finite extremes pass") {
  auto desc = [](WireDtype d, std::uint64_t rows, std::uint64_t cols) {
    TensorDesc t;
    t.dtype = d;
    t.shape = {rows, cols};
    return t;
  };
  // fp32: the largest finite value passes; NaN, +inf, -inf at the last element do not
  std::vector<float> f(6, std::numeric_limits<float>::max());
  CHECK_NOTHROW(check_finite_frame("x", desc(WireDtype::f32, 2, 3), f.data(), f.size() * 4));
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    f[5] = bad;
    CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::f32, 2, 3), f.data(), f.size() * 4),
                         ErrorCode::non_finite);
  }
  // fp16 (0x7bff largest finite, 0x7c00 inf, 0x7e00 NaN) and bf16 (0x7f7f largest, 0x7f80 inf, 0xffc0 NaN)
  std::vector<std::uint16_t> h = {0x3c00, 0x7bff, 0xfbff, 0x0001};
  CHECK_NOTHROW(check_finite_frame("x", desc(WireDtype::f16, 2, 2), h.data(), 8));
  h[2] = 0x7c00;
  CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::f16, 2, 2), h.data(), 8), ErrorCode::non_finite);
  h[2] = 0x7e00;
  CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::f16, 2, 2), h.data(), 8), ErrorCode::non_finite);
  std::vector<std::uint16_t> b = {0x3f80, 0x7f7f, 0xff7f, 0x0001};
  CHECK_NOTHROW(check_finite_frame("x", desc(WireDtype::bf16, 2, 2), b.data(), 8));
  b[0] = 0xffc0;
  CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::bf16, 2, 2), b.data(), 8), ErrorCode::non_finite);
  // int8: values are always finite; the per-row fp32 scales are checked
  std::vector<unsigned char> q(2 * 3 + 2 * 4, 0x7f);
  const float one = 1.0f, nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(q.data() + 6, &one, 4);
  std::memcpy(q.data() + 10, &one, 4);
  CHECK_NOTHROW(check_finite_frame("x", desc(WireDtype::i8, 2, 3), q.data(), q.size()));
  std::memcpy(q.data() + 10, &nan, 4);
  CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::i8, 2, 3), q.data(), q.size()), ErrorCode::non_finite);
  // the size is checked first
  CHECK_PROTOCOL_ERROR(check_finite_frame("x", desc(WireDtype::f32, 2, 3), f.data(), 20), ErrorCode::frame_size_mismatch);
}
