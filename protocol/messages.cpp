// Encode/decode of the protocol (version in messages.hpp), in the order of the grammar in messages.hpp: envelope, then one
// pack/unpack pair per kind, then the public entry points.
#include "protocol/messages.hpp"

#include <cstring>
#include <limits>
#include <tuple>

#include <msgpack.hpp>

#include "protocol/validate.hpp"
#include "protocol/wire_reader.hpp"

namespace duet::protocol {

using Packer = msgpack::packer<msgpack::sbuffer>;
using detail::MapReader;

// ---- names -------------------------------------------------------------------------------------

std::string_view to_string(MessageKind kind) noexcept {
  switch (kind) {
    case MessageKind::hello: return "hello";
    case MessageKind::hello_reply: return "hello_reply";
    case MessageKind::open_session: return "open_session";
    case MessageKind::session_opened: return "session_opened";
    case MessageKind::forward: return "forward";
    case MessageKind::result: return "result";
    case MessageKind::close_session: return "close_session";
    case MessageKind::session_closed: return "session_closed";
    case MessageKind::error: return "error";
  }
  return "unknown";
}

std::string_view to_string(OutputMode mode) noexcept {
  return mode == OutputMode::all ? "all" : "last";
}

MessageKind kind_of(const MessageBody& body) noexcept {
  return static_cast<MessageKind>(body.index() + 1);
}

std::size_t tensor_frame_count(MessageKind kind) noexcept {
  return kind == MessageKind::forward || kind == MessageKind::result ? 1 : 0;
}

void detail::throw_wrong_kind(MessageKind have, std::size_t wanted_index) {
  throw ProtocolError(ErrorCode::bad_message,
                      "received a " + std::string(to_string(have)) + " message where a " +
                          std::string(to_string(static_cast<MessageKind>(wanted_index + 1))) +
                          " was expected");
}

// ---- equality (tests, fuzz round trips) ----------------------------------------------------------

bool operator==(const ServerLimits& a, const ServerLimits& b) {
  return std::tie(a.max_sessions, a.max_positions_per_session, a.max_positions_per_forward,
                  a.max_message_bytes, a.idle_timeout_ms) ==
         std::tie(b.max_sessions, b.max_positions_per_session, b.max_positions_per_forward,
                  b.max_message_bytes, b.idle_timeout_ms);
}
bool operator==(const TensorDesc& a, const TensorDesc& b) {
  return a.dtype == b.dtype && a.shape == b.shape;
}
bool operator==(const Hello& a, const Hello& b) {
  return std::tie(a.protocol_version, a.model_fingerprint, a.wire_dtype, a.client_name, a.edge_blocks) ==
         std::tie(b.protocol_version, b.model_fingerprint, b.wire_dtype, b.client_name, b.edge_blocks);
}
bool operator==(const HelloReply& a, const HelloReply& b) {
  return std::tie(a.protocol_version, a.model_fingerprint, a.hidden_size, a.wire_dtype, a.limits,
                  a.server_name, a.first_block) ==
         std::tie(b.protocol_version, b.model_fingerprint, b.hidden_size, b.wire_dtype, b.limits,
                  b.server_name, b.first_block);
}
bool operator==(const OpenSession& a, const OpenSession& b) {
  return a.max_positions == b.max_positions;
}
bool operator==(const SessionOpened& a, const SessionOpened& b) {
  return a.session_id == b.session_id && a.max_positions == b.max_positions;
}
bool operator==(const Forward& a, const Forward& b) {
  return std::tie(a.session_id, a.start_pos, a.n_positions, a.output, a.hidden) ==
         std::tie(b.session_id, b.start_pos, b.n_positions, b.output, b.hidden);
}
bool operator==(const ResultTiming& a, const ResultTiming& b) {
  return a.queue_us == b.queue_us && a.stage_us == b.stage_us;
}
bool operator==(const Result& a, const Result& b) {
  return std::tie(a.session_id, a.start_pos, a.n_positions_returned, a.cloud_compute_us,
                  a.hidden, a.timing) == std::tie(b.session_id, b.start_pos,
                                                  b.n_positions_returned, b.cloud_compute_us,
                                                  b.hidden, b.timing);
}
bool operator==(const CloseSession& a, const CloseSession& b) {
  return a.session_id == b.session_id;
}
bool operator==(const SessionClosed& a, const SessionClosed& b) {
  return a.session_id == b.session_id;
}
bool operator==(const Error& a, const Error& b) {
  return a.code == b.code && a.message == b.message;
}

// ---- field helpers -------------------------------------------------------------------------------

namespace {

void key(Packer& pk, std::string_view k) {
  pk.pack_str(static_cast<std::uint32_t>(k.size()));
  pk.pack_str_body(k.data(), static_cast<std::uint32_t>(k.size()));
}

void put_str(Packer& pk, std::string_view k, std::string_view v) {
  key(pk, k);
  pk.pack_str(static_cast<std::uint32_t>(v.size()));
  pk.pack_str_body(v.data(), static_cast<std::uint32_t>(v.size()));
}

void put_uint(Packer& pk, std::string_view k, std::uint64_t v) {
  key(pk, k);
  pk.pack_uint64(v);  // msgpack-c writes the shortest encoding for the value
}

void put_desc(Packer& pk, std::string_view k, const TensorDesc& d) {
  key(pk, k);
  pk.pack_map(2);
  put_str(pk, "dtype", dtype_name(d.dtype));
  key(pk, "shape");
  pk.pack_array(static_cast<std::uint32_t>(d.shape.size()));
  for (std::uint64_t s : d.shape) pk.pack_uint64(s);
}

WireDtype read_dtype(MapReader& r, std::string_view k) {
  return parse_dtype_or_throw(r.str(k, 16));
}

TensorDesc read_desc(MapReader& r, std::string_view k) {
  MapReader m = r.map(k);
  TensorDesc d;
  d.dtype = read_dtype(m, "dtype");
  d.shape = m.uint_array("shape", kMaxTensorRank);
  m.finish();
  return d;
}

// ---- one pack/unpack pair per kind -------------------------------------------------------------

// hello
void pack(Packer& pk, const Hello& m) {
  check_fingerprint_format(m.model_fingerprint);
  check_text("client_name", m.client_name, kMaxNameChars);
  pk.pack_map(m.edge_blocks ? 5 : 4);
  put_uint(pk, "protocol_version", m.protocol_version);
  put_str(pk, "model_fingerprint", m.model_fingerprint);
  put_str(pk, "wire_dtype", dtype_name(m.wire_dtype));
  put_str(pk, "client_name", m.client_name);
  if (m.edge_blocks) put_uint(pk, "edge_blocks", m.edge_blocks);
}
Hello unpack_hello(MapReader& r) {
  Hello m;
  m.protocol_version = r.u32("protocol_version");
  m.model_fingerprint = r.str("model_fingerprint", 64);
  m.wire_dtype = read_dtype(r, "wire_dtype");
  m.client_name = r.str("client_name", kMaxNameChars);
  if (r.has("edge_blocks")) m.edge_blocks = r.u32("edge_blocks");
  check_fingerprint_format(m.model_fingerprint);
  check_text("client_name", m.client_name, kMaxNameChars);
  return m;
}

// hello_reply
void pack(Packer& pk, const HelloReply& m) {
  check_fingerprint_format(m.model_fingerprint);
  check_text("server_name", m.server_name, kMaxNameChars);
  pk.pack_map(m.first_block ? 7 : 6);
  put_uint(pk, "protocol_version", m.protocol_version);
  put_str(pk, "model_fingerprint", m.model_fingerprint);
  put_uint(pk, "hidden_size", m.hidden_size);
  put_str(pk, "wire_dtype", dtype_name(m.wire_dtype));
  key(pk, "limits");
  pk.pack_map(5);
  put_uint(pk, "max_sessions", m.limits.max_sessions);
  put_uint(pk, "max_positions_per_session", m.limits.max_positions_per_session);
  put_uint(pk, "max_positions_per_forward", m.limits.max_positions_per_forward);
  put_uint(pk, "max_message_bytes", m.limits.max_message_bytes);
  put_uint(pk, "idle_timeout_ms", m.limits.idle_timeout_ms);
  put_str(pk, "server_name", m.server_name);
  if (m.first_block) put_uint(pk, "first_block", m.first_block);
}
HelloReply unpack_hello_reply(MapReader& r) {
  HelloReply m;
  m.protocol_version = r.u32("protocol_version");
  m.model_fingerprint = r.str("model_fingerprint", 64);
  m.hidden_size = r.u32("hidden_size");
  m.wire_dtype = read_dtype(r, "wire_dtype");
  MapReader l = r.map("limits");
  m.limits.max_sessions = l.u32("max_sessions");
  m.limits.max_positions_per_session = l.u32("max_positions_per_session");
  m.limits.max_positions_per_forward = l.u32("max_positions_per_forward");
  m.limits.max_message_bytes = l.u64("max_message_bytes");
  m.limits.idle_timeout_ms = l.u32("idle_timeout_ms");
  l.finish();
  m.server_name = r.str("server_name", kMaxNameChars);
  if (r.has("first_block")) m.first_block = r.u32("first_block");
  check_fingerprint_format(m.model_fingerprint);
  check_text("server_name", m.server_name, kMaxNameChars);
  return m;
}

// open_session
void pack(Packer& pk, const OpenSession& m) {
  pk.pack_map(1);
  put_uint(pk, "max_positions", m.max_positions);
}
OpenSession unpack_open_session(MapReader& r) {
  OpenSession m;
  m.max_positions = r.u32("max_positions");
  return m;
}

// session_opened
void pack(Packer& pk, const SessionOpened& m) {
  pk.pack_map(2);
  put_uint(pk, "session_id", m.session_id);
  put_uint(pk, "max_positions", m.max_positions);
}
SessionOpened unpack_session_opened(MapReader& r) {
  SessionOpened m;
  m.session_id = r.u64("session_id");
  m.max_positions = r.u32("max_positions");
  return m;
}

// forward
void pack(Packer& pk, const Forward& m) {
  check_forward_body(m);
  pk.pack_map(5);
  put_uint(pk, "session_id", m.session_id);
  put_uint(pk, "start_pos", m.start_pos);
  put_uint(pk, "n_positions", m.n_positions);
  put_str(pk, "output", to_string(m.output));
  put_desc(pk, "hidden", m.hidden);
}
Forward unpack_forward(MapReader& r) {
  Forward m;
  m.session_id = r.u64("session_id");
  m.start_pos = r.u32("start_pos");
  m.n_positions = r.u32("n_positions");
  const std::string out = r.str("output", 8);
  if (out == "last") m.output = OutputMode::last;
  else if (out == "all") m.output = OutputMode::all;
  else
    throw ProtocolError(ErrorCode::bad_message, "field \"output\" of forward body is \"" +
                                                    printable(out) +
                                                    "\"; expected \"last\" or \"all\"");
  m.hidden = read_desc(r, "hidden");
  check_forward_body(m);
  return m;
}

// result
void pack(Packer& pk, const Result& m) {
  check_result_body(m);
  pk.pack_map(m.timing ? 6 : 5);
  put_uint(pk, "session_id", m.session_id);
  put_uint(pk, "start_pos", m.start_pos);
  put_uint(pk, "n_positions", m.n_positions_returned);
  put_uint(pk, "cloud_compute_us", m.cloud_compute_us);
  put_desc(pk, "hidden", m.hidden);
  if (m.timing) {
    key(pk, "timing");
    pk.pack_map(2);
    put_uint(pk, "queue_us", m.timing->queue_us);
    key(pk, "stage_us");
    pk.pack_array(static_cast<std::uint32_t>(m.timing->stage_us.size()));
    for (std::uint64_t us : m.timing->stage_us) pk.pack_uint64(us);
  }
}
Result unpack_result(MapReader& r) {
  Result m;
  m.session_id = r.u64("session_id");
  m.start_pos = r.u32("start_pos");
  m.n_positions_returned = r.u32("n_positions");
  m.cloud_compute_us = r.u64("cloud_compute_us");
  m.hidden = read_desc(r, "hidden");
  if (r.has("timing")) {
    MapReader t = r.map("timing");
    ResultTiming timing;
    timing.queue_us = t.u64("queue_us");
    timing.stage_us = t.uint_array("stage_us", kMaxTimedStages);
    t.finish();
    m.timing = std::move(timing);
  }
  check_result_body(m);
  return m;
}

// close_session
void pack(Packer& pk, const CloseSession& m) {
  pk.pack_map(1);
  put_uint(pk, "session_id", m.session_id);
}
CloseSession unpack_close_session(MapReader& r) { return CloseSession{r.u64("session_id")}; }

// session_closed
void pack(Packer& pk, const SessionClosed& m) {
  pk.pack_map(1);
  put_uint(pk, "session_id", m.session_id);
}
SessionClosed unpack_session_closed(MapReader& r) { return SessionClosed{r.u64("session_id")}; }

// error: the code may be one this build does not know (a newer peer); keep it as sent.
void pack(Packer& pk, const Error& m) {
  pk.pack_map(2);
  put_uint(pk, "code", static_cast<std::uint16_t>(m.code));
  // Our own sentences can be long or quote peer bytes: cut and clean rather than fail to reply.
  std::string text = m.message.size() > kMaxErrorMessageChars
                         ? m.message.substr(0, kMaxErrorMessageChars - 3) + "..."
                         : m.message;
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  put_str(pk, "message", text);
}
Error unpack_error(MapReader& r) {
  Error m;
  m.code = static_cast<ErrorCode>(r.u16("code"));
  m.message = r.str("message", kMaxErrorMessageChars);
  check_text("error message", m.message, kMaxErrorMessageChars);
  return m;
}

MessageBody unpack_body(MessageKind kind, MapReader& r) {
  switch (kind) {
    case MessageKind::hello: return unpack_hello(r);
    case MessageKind::hello_reply: return unpack_hello_reply(r);
    case MessageKind::open_session: return unpack_open_session(r);
    case MessageKind::session_opened: return unpack_session_opened(r);
    case MessageKind::forward: return unpack_forward(r);
    case MessageKind::result: return unpack_result(r);
    case MessageKind::close_session: return unpack_close_session(r);
    case MessageKind::session_closed: return unpack_session_closed(r);
    case MessageKind::error: return unpack_error(r);
  }
  throw ProtocolError(ErrorCode::internal, "unpack_body reached with an unchecked kind");
}

// ---- envelope ------------------------------------------------------------------------------------

std::string pack_header(std::uint64_t request_id, const MessageBody& body) {
  msgpack::sbuffer buf;
  Packer pk(buf);
  pk.pack_array(5);
  pk.pack_str(4);
  pk.pack_str_body(kMagic, 4);
  pk.pack_uint32(kProtocolVersion);
  pk.pack_uint8(static_cast<std::uint8_t>(kind_of(body)));
  pk.pack_uint64(request_id);
  std::visit([&pk](const auto& m) { pack(pk, m); }, body);
  return std::string(buf.data(), buf.size());
}

struct Header {
  MessageKind kind;
  std::uint64_t request_id;
  MessageBody body;
};

Header unpack_header(const FrameView& frame) {
  msgpack::object_handle oh = detail::unpack_header(frame.data, frame.size);
  const msgpack::object& root = oh.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != 5)
    throw ProtocolError(
        ErrorCode::bad_message,
        "header is " + std::string(detail::type_name(root)) +
            (root.type == msgpack::type::ARRAY
                 ? " of " + std::to_string(root.via.array.size) + " entries"
                 : std::string()) +
            "; expected an array of 5: [\"duet\", version, kind, request_id, body]");
  const msgpack::object* e = root.via.array.ptr;
  if (e[0].type != msgpack::type::STR || e[0].via.str.size != 4 ||
      std::memcmp(e[0].via.str.ptr, kMagic, 4) != 0)
    throw ProtocolError(ErrorCode::bad_message,
                        "header does not start with the magic string \"duet\"; this is not a "
                        "duet message (wrong port or wrong program?)");
  const std::uint64_t version =
      detail::read_uint(e[1], "header version", std::numeric_limits<std::uint64_t>::max());
  if (version != kProtocolVersion)
    throw ProtocolError(ErrorCode::unsupported_version,
                        "peer speaks protocol version " + std::to_string(version) +
                            "; this build speaks version " + std::to_string(kProtocolVersion) +
                            " (upgrade the older side)");
  const std::uint64_t kind_raw =
      detail::read_uint(e[2], "header kind", std::numeric_limits<std::uint64_t>::max());
  if (kind_raw < 1 || kind_raw > kMaxMessageKind)
    throw ProtocolError(ErrorCode::bad_message,
                        "header kind " + std::to_string(kind_raw) +
                            " is not a message kind of protocol version " +
                            std::to_string(kProtocolVersion) + " (1.." +
                            std::to_string(kMaxMessageKind) + ")");
  const auto kind = static_cast<MessageKind>(kind_raw);
  const std::uint64_t request_id =
      detail::read_uint(e[3], "header request_id", std::numeric_limits<std::uint64_t>::max());
  MapReader r(e[4], std::string(to_string(kind)) + " body");
  MessageBody body = unpack_body(kind, r);
  r.finish();
  return Header{kind, request_id, std::move(body)};
}

void check_tensor_frames(const DecodedMessage& m) {
  if (const auto* f = std::get_if<Forward>(&m.body))
    check_tensor_frame("forward hidden tensor", f->hidden, m.tensors[0].size);
  else if (const auto* r = std::get_if<Result>(&m.body))
    check_tensor_frame("result hidden tensor", r->hidden, m.tensors[0].size);
}

}  // namespace

// ---- public: frames --------------------------------------------------------------------------------

FrameView view_of(const zmq::message_t& frame) noexcept {
  return FrameView{static_cast<const std::byte*>(frame.data()), frame.size()};
}

zmq::message_t tensor_frame_copy(const void* data, std::size_t bytes) {
  return zmq::message_t(data, bytes);
}

zmq::message_t tensor_frame_zero_copy(void* data, std::size_t bytes, zmq_free_fn* free_fn,
                                      void* hint) {
  return zmq::message_t(data, bytes, free_fn, hint);
}

// ---- public: encode ----------------------------------------------------------------------------------

std::string encode_header(std::uint64_t request_id, const MessageBody& body) {
  return pack_header(request_id, body);
}

void append_message(std::vector<zmq::message_t>& out, std::uint64_t request_id,
                    const MessageBody& body, std::vector<zmq::message_t> tensors) {
  const MessageKind kind = kind_of(body);
  if (tensors.size() != tensor_frame_count(kind))
    throw ProtocolError(ErrorCode::internal,
                        "encoding a " + std::string(to_string(kind)) + " message with " +
                            std::to_string(tensors.size()) + " tensor frames; it takes " +
                            std::to_string(tensor_frame_count(kind)));
  if (const auto* f = std::get_if<Forward>(&body))
    check_tensor_frame("forward hidden tensor", f->hidden, tensors[0].size());
  else if (const auto* r = std::get_if<Result>(&body))
    check_tensor_frame("result hidden tensor", r->hidden, tensors[0].size());
  const std::string header = pack_header(request_id, body);
  out.emplace_back(header.data(), header.size());
  for (auto& t : tensors) out.push_back(std::move(t));
}

namespace {
std::vector<zmq::message_t> one(std::uint64_t request_id, MessageBody body,
                                std::vector<zmq::message_t> tensors = {}) {
  std::vector<zmq::message_t> out;
  out.reserve(1 + tensors.size());
  append_message(out, request_id, body, std::move(tensors));
  return out;
}
std::vector<zmq::message_t> with_tensor(zmq::message_t t) {
  std::vector<zmq::message_t> v;
  v.push_back(std::move(t));
  return v;
}
}  // namespace

std::vector<zmq::message_t> encode(std::uint64_t rid, const Hello& m) { return one(rid, m); }
std::vector<zmq::message_t> encode(std::uint64_t rid, const HelloReply& m) { return one(rid, m); }
std::vector<zmq::message_t> encode(std::uint64_t rid, const OpenSession& m) { return one(rid, m); }
std::vector<zmq::message_t> encode(std::uint64_t rid, const SessionOpened& m) {
  return one(rid, m);
}
std::vector<zmq::message_t> encode(std::uint64_t rid, const Forward& m, zmq::message_t hidden) {
  return one(rid, m, with_tensor(std::move(hidden)));
}
std::vector<zmq::message_t> encode(std::uint64_t rid, const Result& m, zmq::message_t hidden) {
  return one(rid, m, with_tensor(std::move(hidden)));
}
std::vector<zmq::message_t> encode(std::uint64_t rid, const CloseSession& m) {
  return one(rid, m);
}
std::vector<zmq::message_t> encode(std::uint64_t rid, const SessionClosed& m) {
  return one(rid, m);
}
std::vector<zmq::message_t> encode(std::uint64_t rid, const Error& m) { return one(rid, m); }

// ---- public: decode ----------------------------------------------------------------------------------

DecodedMessage decode(const FrameView* frames, std::size_t count, const DecodeLimits& limits) {
  check_frames(frames, count, limits);
  Header h = unpack_header(frames[0]);
  const std::size_t want = tensor_frame_count(h.kind);
  if (count - 1 != want)
    throw ProtocolError(ErrorCode::bad_message,
                        std::string(to_string(h.kind)) + " message has " +
                            std::to_string(count - 1) + " tensor frames after its header; it " +
                            "must have exactly " + std::to_string(want));
  DecodedMessage m;
  m.kind = h.kind;
  m.request_id = h.request_id;
  m.body = std::move(h.body);
  m.tensors.assign(frames + 1, frames + count);
  check_tensor_frames(m);
  return m;
}

DecodedMessage decode(const std::vector<FrameView>& frames, const DecodeLimits& limits) {
  return decode(frames.data(), frames.size(), limits);
}

DecodedMessage decode(const zmq::message_t* frames, std::size_t count,
                      const DecodeLimits& limits) {
  // Bound before allocating views: a peer controls how many frames arrive.
  if (count > limits.max_frames)
    throw ProtocolError(ErrorCode::too_large,
                        "message has " + std::to_string(count) + " frames; at most " +
                            std::to_string(limits.max_frames) + " are allowed");
  std::vector<FrameView> views;
  views.reserve(count);
  for (std::size_t i = 0; i < count; ++i) views.push_back(view_of(frames[i]));
  return decode(views.data(), views.size(), limits);
}

DecodedMessage decode(const std::vector<zmq::message_t>& frames, const DecodeLimits& limits) {
  return decode(frames.data(), frames.size(), limits);
}

}  // namespace duet::protocol
