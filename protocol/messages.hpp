// duet wire protocol, version 2: message kinds, one struct per kind, encode/decode.
//
// Grammar (one ZeroMQ multipart message; ROUTER identity frames are the transport's business)
//
//   message      = header-frame *tensor-frame
//   header-frame = msgpack array [ magic, version, kind, request_id, body ]
//     magic      = str "duet"
//     version    = uint, kProtocolVersion; any other value: unsupported_version
//     kind       = uint, a MessageKind value
//     request_id = uint64 chosen by the requester and echoed in the reply (and in an Error)
//     body       = map of str keys: exactly the fields listed for the kind, no more, no fewer;
//                  a field in [brackets] may be left out, and nothing else may
//   tensor-frame = raw bytes, little-endian, row-major contiguous; dtype and shape are in the
//                  body's tensor descriptor. Tensor bytes never go inside msgpack.
//   tensor-desc  = map { "dtype": str ("fp32"|"fp16"|"bf16"|"int8"), "shape": [uint, uint] }
//                  (int8: the frame's rows * hidden bytes are followed by rows fp32 scales, see dtype.hpp)
//
//   kind            from    body                                                  tensor frames
//   hello           edge    protocol_version, model_fingerprint, wire_dtype,      0
//                           client_name, [edge_blocks]
//   hello_reply     cloud   protocol_version, model_fingerprint, hidden_size,     0
//                           wire_dtype, limits{max_sessions,
//                           max_positions_per_session, max_positions_per_forward,
//                           max_message_bytes, idle_timeout_ms}, server_name,
//                           [first_block]
//
//   Fields in [brackets] may be left out (absent = 0) and are sent only when not 0, so a peer
//   that does not use them sees the same messages as before they existed. edge_blocks: the edge runs blocks
//   [0, edge_blocks) itself and sends their output (--edge-blocks); first_block: the daemon
//   runs blocks [first_block, num_layers). They must be equal, else hello gets model_mismatch.
//   open_session    edge    max_positions (0 = server default)                    0
//   session_opened  cloud   session_id, max_positions (granted)                   0
//   forward         edge    session_id, start_pos, n_positions, output            1: [n_positions, hidden]
//                           ("last"|"all"), hidden: tensor-desc
//   result          cloud   session_id, start_pos, n_positions, cloud_compute_us, 1: [n_positions, hidden]
//                           hidden: tensor-desc, [timing]
//   close_session   edge    session_id                                            0
//   session_closed  cloud   session_id                                            0
//   error           either  code (uint16, ErrorCode), message (str)               0
//
//   timing       = map { "queue_us": uint, "stage_us": [uint, ...] (1..kMaxTimedStages) }
//     cloud_compute_us: received by the daemon -> reply ready; of which queue_us: waiting for the
//     first step that ran the forward's rows; stage_us[i]: compute of stage i in the steps that
//     ran them (a batched step's time counts whole for every forward in it). queue_us + the sum of
//     stage_us never exceeds cloud_compute_us; the rest is inputs, replies, and waiting between
//     the steps of a chunked prefill. The edge derives uplink + downlink as its round trip minus
//     cloud_compute_us.
//
// Versions: 1, the first; 2 adds result.timing (a v1 peer refuses unknown fields, hence the bump).
//
// Conversation: hello -> hello_reply (or error), then any number of open_session / forward /
// close_session requests, each answered by its reply kind or by an error with the same
// request_id. A forward's start_pos is the position of its first row; the result's start_pos is
// the position of its first returned row (start_pos + n - 1 when output is "last").
//
// Positions and the KV cache (what speculative decoding relies on): a session's length L is the
// number of positions its KV holds. A forward needs start_pos <= L (else position_gap); it writes
// positions [start_pos, start_pos + n) and, once it has run, the session's length is
// start_pos + n, whatever L was: a forward starting before L overwrites from start_pos on and
// forgets everything after its last position. An edge that sent draft tokens at positions
// [p, p + k) and kept only j of them sends its next forward at p + j: the rejected positions'
// KV is overwritten (or left past the length, never attended to). A refused forward changes
// nothing; one that fails while running leaves the length at min(L, start_pos). output "all" returns every position's last hidden state,
// which is how k drafts are verified in one round trip.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "protocol/dtype.hpp"
#include "protocol/errors.hpp"
#include "protocol/limits.hpp"

namespace duet::protocol {

inline constexpr std::uint32_t kProtocolVersion = 2;
inline constexpr char kMagic[] = "duet";

// Values are on the wire. hello keeps its number forever, so that any two versions can at least
// tell each other which version they speak. Adding a kind means bumping kProtocolVersion.
enum class MessageKind : std::uint8_t {
  hello = 1,
  hello_reply = 2,
  open_session = 3,
  session_opened = 4,
  forward = 5,
  result = 6,
  close_session = 7,
  session_closed = 8,
  error = 9,
};
inline constexpr std::uint8_t kMaxMessageKind = 9;

std::string_view to_string(MessageKind kind) noexcept;

// ---- one struct per kind -------------------------------------------------------------------

struct Hello {
  std::uint32_t protocol_version = kProtocolVersion;
  std::string model_fingerprint;  // 64 lowercase hex chars, see fingerprint.hpp
  WireDtype wire_dtype = WireDtype::f32;
  std::string client_name;        // free text for logs, <= kMaxNameChars
  std::uint32_t edge_blocks = 0;  // blocks [0, edge_blocks) run on the edge (optional field)
};

struct ServerLimits {
  std::uint32_t max_sessions = 0;
  std::uint32_t max_positions_per_session = 0;
  std::uint32_t max_positions_per_forward = 0;
  std::uint64_t max_message_bytes = 0;  // whole multipart message, all frames
  std::uint32_t idle_timeout_ms = 0;    // a session idle this long is closed by the daemon
};

struct HelloReply {
  std::uint32_t protocol_version = kProtocolVersion;
  std::string model_fingerprint;
  std::uint32_t hidden_size = 0;
  WireDtype wire_dtype = WireDtype::f32;
  ServerLimits limits;
  std::string server_name;
  std::uint32_t first_block = 0;  // the daemon runs blocks [first_block, num_layers) (optional field)
};

struct OpenSession {
  std::uint32_t max_positions = 0;  // 0 = server default
};

struct SessionOpened {
  std::uint64_t session_id = 0;
  std::uint32_t max_positions = 0;  // what the daemon granted
};

enum class OutputMode : std::uint8_t { last = 0, all = 1 };
std::string_view to_string(OutputMode mode) noexcept;

struct TensorDesc {
  WireDtype dtype = WireDtype::f32;
  std::vector<std::uint64_t> shape;  // [rows, hidden] in protocol v1
};

struct Forward {
  std::uint64_t session_id = 0;
  std::uint32_t start_pos = 0;
  std::uint32_t n_positions = 0;
  OutputMode output = OutputMode::last;
  TensorDesc hidden;  // [n_positions, hidden_size], one tensor frame
};

// Where a forward's time went in the daemon (see `timing` in the grammar).
struct ResultTiming {
  std::uint64_t queue_us = 0;            // received -> its first step started
  std::vector<std::uint64_t> stage_us;   // per stage, in plan order
};

struct Result {
  std::uint64_t session_id = 0;
  std::uint32_t start_pos = 0;            // position of the first returned row
  std::uint32_t n_positions_returned = 0;
  std::uint64_t cloud_compute_us = 0;     // time spent in the daemon, for latency breakdowns
  TensorDesc hidden;  // [n_positions_returned, hidden_size], one tensor frame
  std::optional<ResultTiming> timing;     // optional: a daemon may not measure it
};

struct CloseSession {
  std::uint64_t session_id = 0;
};

struct SessionClosed {
  std::uint64_t session_id = 0;
};

struct Error {
  ErrorCode code = ErrorCode::internal;  // may be a value this build does not know
  std::string message;
};

bool operator==(const ServerLimits& a, const ServerLimits& b);
bool operator==(const TensorDesc& a, const TensorDesc& b);
bool operator==(const Hello& a, const Hello& b);
bool operator==(const HelloReply& a, const HelloReply& b);
bool operator==(const OpenSession& a, const OpenSession& b);
bool operator==(const SessionOpened& a, const SessionOpened& b);
bool operator==(const Forward& a, const Forward& b);
bool operator==(const ResultTiming& a, const ResultTiming& b);
bool operator==(const Result& a, const Result& b);
bool operator==(const CloseSession& a, const CloseSession& b);
bool operator==(const SessionClosed& a, const SessionClosed& b);
bool operator==(const Error& a, const Error& b);

// Alternative i holds the struct of MessageKind i + 1.
using MessageBody = std::variant<Hello, HelloReply, OpenSession, SessionOpened, Forward, Result,
                                 CloseSession, SessionClosed, Error>;
static_assert(std::variant_size_v<MessageBody> == kMaxMessageKind,
              "a new message kind needs a MessageKind value and a kProtocolVersion bump");

MessageKind kind_of(const MessageBody& body) noexcept;

// Tensor frames a kind carries (0 or 1 in v1).
std::size_t tensor_frame_count(MessageKind kind) noexcept;

// ---- frames -----------------------------------------------------------------------------------

// Non-owning view of one received frame; whoever owns the zmq::message_t keeps it alive.
struct FrameView {
  const std::byte* data = nullptr;
  std::size_t size = 0;
};
FrameView view_of(const zmq::message_t& frame) noexcept;

struct DecodedMessage {
  MessageKind kind = MessageKind::error;
  std::uint64_t request_id = 0;
  MessageBody body;
  std::vector<FrameView> tensors;  // views into the caller's frames, validated against the body

  // The body as kind T; throws ProtocolError(bad_message) naming both kinds when it is another.
  template <class T>
  const T& as() const;
};

// ---- building tensor frames -------------------------------------------------------------------

// Copies bytes into a new frame (the caller's buffer may be reused at once).
zmq::message_t tensor_frame_copy(const void* data, std::size_t bytes);

// Sends the caller's buffer without copying. libzmq calls free_fn(data, hint) from its I/O thread
// once the frame is sent or dropped; the buffer must stay valid and unchanged until then.
zmq::message_t tensor_frame_zero_copy(void* data, std::size_t bytes, zmq_free_fn* free_fn,
                                      void* hint);

// ---- encode: one function per kind -----------------------------------------------------------
// Each returns the frames of one message (header first). Tensor-carrying kinds check that the
// frame's size matches the descriptor and throw ProtocolError before anything is sent.

std::vector<zmq::message_t> encode(std::uint64_t request_id, const Hello& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const HelloReply& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const OpenSession& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const SessionOpened& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const Forward& m,
                                   zmq::message_t hidden);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const Result& m,
                                   zmq::message_t hidden);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const CloseSession& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const SessionClosed& m);
std::vector<zmq::message_t> encode(std::uint64_t request_id, const Error& m);

// Generic form: appends header + tensors to out (a ROUTER puts the peer identity in out first).
void append_message(std::vector<zmq::message_t>& out, std::uint64_t request_id,
                    const MessageBody& body, std::vector<zmq::message_t> tensors = {});

// Frame 0 bytes alone (tests, fuzz seeds). Checks the body's own fields like encode() does.
std::string encode_header(std::uint64_t request_id, const MessageBody& body);

// ---- decode ------------------------------------------------------------------------------------
// Parses and checks everything a message says about itself: limits, msgpack structure, magic,
// version, kind, every field's type and range, frame count, tensor descriptor (rank 2,
// shape[0] == the body's position count) and each tensor frame's byte count.
// What needs context (hidden size, negotiated dtype, per-forward limit, session state) is in
// validate.hpp. Throws ProtocolError; never anything else for bad input.

DecodedMessage decode(const FrameView* frames, std::size_t count,
                      const DecodeLimits& limits = {});
DecodedMessage decode(const std::vector<FrameView>& frames, const DecodeLimits& limits = {});
// zmq frames: the views in the result point into these messages.
DecodedMessage decode(const zmq::message_t* frames, std::size_t count,
                      const DecodeLimits& limits = {});
DecodedMessage decode(const std::vector<zmq::message_t>& frames,
                      const DecodeLimits& limits = {});

// ---- template definitions ---------------------------------------------------------------------

namespace detail {
[[noreturn]] void throw_wrong_kind(MessageKind have, std::size_t wanted_index);
}

template <class T>
const T& DecodedMessage::as() const {
  if (const T* p = std::get_if<T>(&body)) return *p;
  detail::throw_wrong_kind(kind, MessageBody(T{}).index());
}

}  // namespace duet::protocol
