// Shared by the protocol tests: sample messages, raw frame building, msgpack surgery on
// encoded headers (to make precisely malformed ones), and a check for ProtocolError codes.
#pragma once

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include <msgpack.hpp>

#include "protocol/messages.hpp"
#include "protocol/validate.hpp"

namespace duet::protocol::test {

inline const std::string kFingerprint(64, 'a');

inline Hello sample_hello() { return Hello{kProtocolVersion, kFingerprint, WireDtype::bf16, "edge-test"}; }

inline HelloReply sample_hello_reply() {
  return HelloReply{kProtocolVersion, kFingerprint, 4, WireDtype::bf16,
                    ServerLimits{8, 2048, 512, 1u << 20, 60000}, "cloud-test"};
}

// forward of n positions, hidden 4, bf16; tensor bytes filled with 0x11.
inline Forward sample_forward(std::uint32_t n = 2, std::uint32_t hidden = 4) {
  return Forward{42, 10, n, OutputMode::last, TensorDesc{WireDtype::bf16, {n, hidden}}};
}

inline Result sample_result() {
  return Result{42, 11, 1, 1234, TensorDesc{WireDtype::bf16, {1, 4}}, std::nullopt};
}

// The same with the daemon's timing: 200 us queued, two stages of 300 and 500 us (of 1234 in all).
inline Result sample_timed_result() {
  Result r = sample_result();
  r.timing = ResultTiming{200, {300, 500}};
  return r;
}

// Owns frame bytes and hands out views, like a received zmq multipart would.
struct RawMessage {
  std::vector<std::string> frames;
  std::vector<FrameView> views() const {
    std::vector<FrameView> v;
    for (const auto& f : frames) v.push_back({reinterpret_cast<const std::byte*>(f.data()), f.size()});
    return v;
  }
  DecodedMessage decode(const DecodeLimits& limits = {}) const {
    return protocol::decode(views(), limits);
  }
};

inline RawMessage raw(std::uint64_t rid, const MessageBody& body,
                      std::vector<std::string> tensors = {}) {
  RawMessage m;
  m.frames.push_back(encode_header(rid, body));
  for (auto& t : tensors) m.frames.push_back(std::move(t));
  return m;
}

inline std::string tensor_bytes_of(const TensorDesc& d, char fill = 0x11) {
  return std::string(static_cast<std::size_t>(tensor_bytes(d)), fill);
}

inline RawMessage raw_forward(const Forward& f) { return raw(7, f, {tensor_bytes_of(f.hidden)}); }

// Unpacks header bytes, lets `edit` change the msgpack tree, packs it again.
using Edit = std::function<void(msgpack::object& root, msgpack::zone& zone)>;
inline std::string edit_header(const std::string& header, const Edit& edit) {
  msgpack::object_handle oh = msgpack::unpack(header.data(), header.size());
  msgpack::zone zone;
  msgpack::object root(oh.get(), zone);  // deep copy we may modify
  edit(root, zone);
  msgpack::sbuffer buf;
  msgpack::pack(buf, root);
  return std::string(buf.data(), buf.size());
}

inline msgpack::object& body_of(msgpack::object& root) { return root.via.array.ptr[4]; }

inline msgpack::object& field(msgpack::object& map, const std::string& key) {
  for (std::uint32_t i = 0; i < map.via.map.size; ++i) {
    auto& kv = map.via.map.ptr[i];
    if (kv.key.as<std::string>() == key) return kv.val;
  }
  FAIL("test bug: no field " << key);
  throw 0;
}

inline void remove_field(msgpack::object& map, const std::string& key) {
  auto& m = map.via.map;
  for (std::uint32_t i = 0; i < m.size; ++i)
    if (m.ptr[i].key.as<std::string>() == key) {
      m.ptr[i] = m.ptr[m.size - 1];
      --m.size;
      return;
    }
}

inline void add_field(msgpack::object& map, msgpack::zone& zone, const std::string& key,
                      const msgpack::object& value) {
  auto& m = map.via.map;
  auto* kv = static_cast<msgpack::object_kv*>(zone.allocate_align(sizeof(msgpack::object_kv) * (m.size + 1)));
  for (std::uint32_t i = 0; i < m.size; ++i) kv[i] = m.ptr[i];
  kv[m.size].key = msgpack::object(key, zone);
  kv[m.size].val = value;
  m.ptr = kv;
  ++m.size;
}

// Header of `m` with one edit applied; tensor frames kept.
inline RawMessage edited(RawMessage m, const Edit& edit) {
  m.frames[0] = edit_header(m.frames[0], edit);
  return m;
}

}  // namespace duet::protocol::test

// Checks that `expr` throws ProtocolError with `expected_code` and a non-empty sentence.
#define CHECK_PROTOCOL_ERROR(expr, expected_code)                                           \
  do {                                                                                      \
    try {                                                                                   \
      (void)(expr);                                                                         \
      FAIL_CHECK("expected ProtocolError(" << ::duet::protocol::to_string(expected_code)   \
                                           << ") from " #expr);                             \
    } catch (const ::duet::protocol::ProtocolError& e_) {                                   \
      INFO("message: " << std::string(e_.what()));                                                       \
      CHECK(::duet::protocol::to_string(e_.code()) ==                                       \
            ::duet::protocol::to_string(expected_code));                                    \
      CHECK(std::string(e_.what()).size() > 10);                                            \
    }                                                                                       \
  } while (0)
