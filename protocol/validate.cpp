#include "protocol/validate.hpp"

#include <cstring>
#include <string>

namespace duet::protocol {
namespace {

std::string shape_text(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::string str(std::string_view v) { return std::string(v); }

}  // namespace

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  std::uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  out = r;
  return true;
}

bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  std::uint64_t r;
  if (__builtin_add_overflow(a, b, &r)) return false;
  out = r;
  return true;
}

void check_frames(const FrameView* frames, std::size_t count, const DecodeLimits& limits) {
  if (count == 0 || frames == nullptr)
    throw ProtocolError(ErrorCode::bad_message,
                        "message has no frames; expected a msgpack header frame first");
  if (count > limits.max_frames)
    throw ProtocolError(ErrorCode::too_large,
                        "message has " + std::to_string(count) + " frames; at most " +
                            std::to_string(limits.max_frames) + " are allowed");
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < count; ++i) {
    if (!checked_add(total, frames[i].size, total) || total > limits.max_message_bytes)
      throw ProtocolError(ErrorCode::too_large,
                          "message is larger than the limit of " +
                              std::to_string(limits.max_message_bytes) +
                              " bytes (frame " + std::to_string(i) + " alone has " +
                              std::to_string(frames[i].size) + " bytes)");
  }
  if (frames[0].size > limits.max_header_bytes)
    throw ProtocolError(ErrorCode::too_large,
                        "header frame has " + std::to_string(frames[0].size) +
                            " bytes; at most " + std::to_string(limits.max_header_bytes) +
                            " are allowed (tensor bytes belong in their own frames)");
}

void check_fingerprint_format(std::string_view fp) {
  bool ok = fp.size() == 64;
  for (char c : fp) ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!ok)
    throw ProtocolError(ErrorCode::bad_message,
                        "model_fingerprint \"" + printable(fp, 80) +
                            "\" is not a SHA-256 in hex; expected 64 lowercase hex characters");
}

void check_text(std::string_view field, std::string_view value, std::size_t max_chars) {
  if (value.size() > max_chars)
    throw ProtocolError(ErrorCode::bad_message,
                        str(field) + " has " + std::to_string(value.size()) +
                            " bytes; at most " + std::to_string(max_chars) + " are allowed");
  for (char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f)
      throw ProtocolError(ErrorCode::bad_message,
                          str(field) + " \"" + printable(value) +
                              "\" contains a control character; only printable text is allowed");
  }
}

std::uint64_t tensor_bytes(const TensorDesc& desc) {
  std::uint64_t n = element_size(desc.dtype), scales = 0;
  bool ok = desc.shape.empty() || checked_mul(desc.shape[0], row_overhead_bytes(desc.dtype), scales);
  for (std::uint64_t d : desc.shape) ok = ok && checked_mul(n, d, n);
  if (ok) ok = checked_add(n, scales, n);
  if (!ok)
    throw ProtocolError(ErrorCode::too_large,
                        "tensor of shape " + shape_text(desc.shape) + " and dtype " + str(dtype_name(desc.dtype)) +
                            " would need more than 2^64 bytes; the shape is not plausible");
  return n;
}

void check_tensor_desc(std::string_view what, const TensorDesc& desc, std::uint64_t rows) {
  if (desc.shape.size() != 2)
    throw ProtocolError(ErrorCode::bad_shape,
                        str(what) + " has shape " + shape_text(desc.shape) + " (rank " +
                            std::to_string(desc.shape.size()) +
                            "); expected rank 2: [positions, hidden]");
  if (desc.shape[0] != rows)
    throw ProtocolError(ErrorCode::bad_shape,
                        str(what) + " has shape " + shape_text(desc.shape) + " but the header says " +
                            std::to_string(rows) + " positions; shape[0] must equal it");
  if (desc.shape[1] == 0)
    throw ProtocolError(ErrorCode::bad_shape,
                        str(what) + " has shape " + shape_text(desc.shape) +
                            "; the hidden size must be at least 1");
  tensor_bytes(desc);  // rejects shapes whose byte count overflows
}

void check_tensor_frame(std::string_view what, const TensorDesc& desc, std::size_t frame_bytes) {
  const std::uint64_t want = tensor_bytes(desc);
  if (frame_bytes != want)
    throw ProtocolError(ErrorCode::frame_size_mismatch,
                        str(what) + " frame has " + std::to_string(frame_bytes) +
                            " bytes; shape " + shape_text(desc.shape) + " in " +
                            str(dtype_name(desc.dtype)) + " needs exactly " +
                            std::to_string(want));
}

namespace {

// Index of the first non-finite element among n little-endian elements of `bytes` bytes each
// whose exponent field is `exp_mask` at bit offset 0 of the element read as an integer; n if none.
template <typename Word>
std::uint64_t first_non_finite(const unsigned char* p, std::uint64_t n, Word exp_mask, std::size_t stride) {
  for (std::uint64_t i = 0; i < n; ++i) {
    Word w = 0;
    std::memcpy(&w, p + i * stride, sizeof(Word));  // the wire is little-endian, as is every host duet builds for
    if ((w & exp_mask) == exp_mask) return i;
  }
  return n;
}

}  // namespace

void check_finite_frame(std::string_view what, const TensorDesc& desc, const void* data, std::size_t frame_bytes) {
  check_tensor_frame(what, desc, frame_bytes);
  const auto* p = static_cast<const unsigned char*>(data);
  const std::uint64_t rows = desc.shape.empty() ? 0 : desc.shape[0];
  const std::uint64_t elems = rows == 0 ? 0 : (frame_bytes - rows * row_overhead_bytes(desc.dtype)) / element_size(desc.dtype);
  std::uint64_t bad = elems, per_row = rows ? elems / rows : 0;
  switch (desc.dtype) {
    case WireDtype::f32: bad = first_non_finite<std::uint32_t>(p, elems, 0x7f800000u, 4); break;
    case WireDtype::f16: bad = first_non_finite<std::uint16_t>(p, elems, 0x7c00u, 2); break;
    case WireDtype::bf16: bad = first_non_finite<std::uint16_t>(p, elems, 0x7f80u, 2); break;
    case WireDtype::i8: {  // int8 values are finite; the per-row fp32 scales follow them
      const std::uint64_t b = first_non_finite<std::uint32_t>(p + elems, rows, 0x7f800000u, 4);
      if (b < rows)
        throw ProtocolError(ErrorCode::non_finite, str(what) + " row " + std::to_string(b) +
                                                       " has a NaN or infinite int8 scale; activations are finite");
      return;
    }
  }
  if (bad < elems)
    throw ProtocolError(ErrorCode::non_finite,
                        str(what) + " holds a NaN or infinity (row " + std::to_string(per_row ? bad / per_row : 0) +
                            ", column " + std::to_string(per_row ? bad % per_row : 0) +
                            "); activations are always finite: the sender's model or encoder is broken");
}

static void check_position_range(std::string_view kind, std::uint32_t start, std::uint32_t n) {
  std::uint64_t end = std::uint64_t{start} + n;
  if (end > UINT32_MAX)
    throw ProtocolError(ErrorCode::position_limit,
                        str(kind) + " covers positions " + std::to_string(start) + " + " +
                            std::to_string(n) + ", past the 32-bit position range");
}

void check_forward_body(const Forward& m) {
  if (m.n_positions == 0)
    throw ProtocolError(ErrorCode::bad_shape,
                        "forward has n_positions 0; a forward carries at least one position");
  check_position_range("forward", m.start_pos, m.n_positions);
  check_tensor_desc("forward hidden tensor", m.hidden, m.n_positions);
}

void check_result_body(const Result& m) {
  if (m.n_positions_returned == 0)
    throw ProtocolError(ErrorCode::bad_shape,
                        "result has n_positions 0; a result returns at least one position");
  check_position_range("result", m.start_pos, m.n_positions_returned);
  check_tensor_desc("result hidden tensor", m.hidden, m.n_positions_returned);
  if (!m.timing) return;
  const auto& t = *m.timing;
  if (t.stage_us.empty() || t.stage_us.size() > kMaxTimedStages)
    throw ProtocolError(ErrorCode::bad_message,
                        "result timing has " + std::to_string(t.stage_us.size()) +
                            " stage times; expected 1 to " + std::to_string(kMaxTimedStages) +
                            " (one per stage of the daemon)");
  // parts of one interval: they cannot add up to more than the whole
  std::uint64_t parts = t.queue_us;
  bool ok = true;
  for (std::uint64_t us : t.stage_us) ok = ok && checked_add(parts, us, parts);
  if (!ok || parts > m.cloud_compute_us)
    throw ProtocolError(ErrorCode::bad_message,
                        "result timing says queue " + std::to_string(t.queue_us) +
                            " us + stages " + (ok ? std::to_string(parts - t.queue_us) : "(overflow)") +
                            " us, more than the " + std::to_string(m.cloud_compute_us) +
                            " us the daemon spent on the forward in all (cloud_compute_us)");
}

void validate_forward(const Forward& m, const ForwardContract& c) {
  if (m.hidden.dtype != c.wire_dtype)
    throw ProtocolError(ErrorCode::bad_dtype,
                        "forward hidden tensor is " + str(dtype_name(m.hidden.dtype)) +
                            " but the handshake agreed on " + str(dtype_name(c.wire_dtype)));
  if (m.hidden.shape.size() != 2 || m.hidden.shape[1] != c.hidden_size)
    throw ProtocolError(ErrorCode::bad_shape,
                        "forward hidden tensor has shape " + shape_text(m.hidden.shape) +
                            "; expected [" + std::to_string(m.n_positions) + ", " +
                            std::to_string(c.hidden_size) + "] (hidden size of this model)");
  if (m.n_positions == 0 || m.n_positions > c.max_positions_per_forward)
    throw ProtocolError(ErrorCode::position_limit,
                        "forward carries " + std::to_string(m.n_positions) +
                            " positions; this server takes 1 to " +
                            std::to_string(c.max_positions_per_forward) +
                            " per forward (split the prompt into several forwards)");
}

void validate_result(const Result& m, const Forward& request, const ForwardContract& c) {
  if (m.session_id != request.session_id)
    throw ProtocolError(ErrorCode::bad_message,
                        "result is for session " + std::to_string(m.session_id) +
                            " but the forward was for session " +
                            std::to_string(request.session_id));
  const std::uint32_t want_n = request.output == OutputMode::all ? request.n_positions : 1;
  const std::uint32_t want_start =
      request.output == OutputMode::all ? request.start_pos
                                        : request.start_pos + request.n_positions - 1;
  if (m.n_positions_returned != want_n || m.start_pos != want_start)
    throw ProtocolError(ErrorCode::bad_message,
                        "result returns " + std::to_string(m.n_positions_returned) +
                            " positions from " + std::to_string(m.start_pos) +
                            "; the forward asked for " + std::to_string(want_n) + " from " +
                            std::to_string(want_start));
  if (m.hidden.dtype != c.wire_dtype)
    throw ProtocolError(ErrorCode::bad_dtype,
                        "result hidden tensor is " + str(dtype_name(m.hidden.dtype)) +
                            " but the handshake agreed on " + str(dtype_name(c.wire_dtype)));
  if (m.hidden.shape.size() != 2 || m.hidden.shape[1] != c.hidden_size)
    throw ProtocolError(ErrorCode::bad_shape,
                        "result hidden tensor has shape " + shape_text(m.hidden.shape) +
                            "; expected [" + std::to_string(want_n) + ", " +
                            std::to_string(c.hidden_size) + "]");
}

static void check_version(std::string_view what, std::uint32_t v) {
  if (v != kProtocolVersion)
    throw ProtocolError(ErrorCode::unsupported_version,
                        str(what) + " speaks protocol version " + std::to_string(v) +
                            "; this build speaks version " + std::to_string(kProtocolVersion) +
                            " (upgrade the older side)");
}

void check_hello(const Hello& m, std::string_view expected_fingerprint,
                 std::uint32_t allowed_dtypes_mask) {
  check_version("client", m.protocol_version);
  if (m.model_fingerprint != expected_fingerprint)
    throw ProtocolError(ErrorCode::model_mismatch,
                        "client's model fingerprint " + printable(m.model_fingerprint, 80) +
                            " differs from this server's " + str(expected_fingerprint) +
                            "; both sides must load the same checkpoint");
  if ((allowed_dtypes_mask & dtype_bit(m.wire_dtype)) == 0) {
    std::string allowed;
    for (WireDtype d : {WireDtype::f32, WireDtype::f16, WireDtype::bf16})
      if (allowed_dtypes_mask & dtype_bit(d)) allowed += (allowed.empty() ? "" : ", ") + str(dtype_name(d));
    throw ProtocolError(ErrorCode::bad_dtype,
                        "client asked for wire dtype " + str(dtype_name(m.wire_dtype)) +
                            "; this server serves " + (allowed.empty() ? "none" : allowed));
  }
}

void check_block_split(std::uint32_t edge_blocks, std::uint32_t first_block) {
  if (edge_blocks == first_block) return;
  throw ProtocolError(ErrorCode::model_mismatch,
                      "the edge runs blocks [0, " + std::to_string(edge_blocks) + ") but the daemon runs from block " +
                          std::to_string(first_block) + " on; start the edge with --edge-blocks " +
                          std::to_string(first_block) + " (or the daemon with --first-block " +
                          std::to_string(edge_blocks) + ")");
}

void check_hello_reply(const HelloReply& m, std::string_view expected_fingerprint,
                       WireDtype requested_dtype) {
  check_version("server", m.protocol_version);
  if (m.model_fingerprint != expected_fingerprint)
    throw ProtocolError(ErrorCode::model_mismatch,
                        "server's model fingerprint " + printable(m.model_fingerprint, 80) +
                            " differs from ours " + str(expected_fingerprint) +
                            "; both sides must load the same checkpoint");
  if (m.wire_dtype != requested_dtype)
    throw ProtocolError(ErrorCode::bad_dtype,
                        "server chose wire dtype " + str(dtype_name(m.wire_dtype)) +
                            " but we asked for " + str(dtype_name(requested_dtype)));
  if (m.hidden_size == 0 || m.limits.max_positions_per_forward == 0)
    throw ProtocolError(ErrorCode::bad_message,
                        "server announced hidden_size " + std::to_string(m.hidden_size) +
                            " and max_positions_per_forward " +
                            std::to_string(m.limits.max_positions_per_forward) +
                            "; both must be at least 1");
}

std::uint32_t check_forward_positions(std::uint32_t session_len, std::uint32_t start_pos,
                                      std::uint32_t n_positions, std::uint32_t max_positions) {
  if (n_positions == 0)
    throw ProtocolError(ErrorCode::bad_shape,
                        "forward has n_positions 0; a forward carries at least one position");
  if (start_pos > session_len)
    throw ProtocolError(ErrorCode::position_gap,
                        "forward starts at position " + std::to_string(start_pos) +
                            " but the session holds " + std::to_string(session_len) +
                            " positions; the next forward must start at or before " +
                            std::to_string(session_len));
  const std::uint64_t end = std::uint64_t{start_pos} + n_positions;  // no wrap in 64 bits
  if (end > max_positions)
    throw ProtocolError(ErrorCode::position_limit,
                        "forward would fill positions up to " + std::to_string(end) +
                            " but the session is limited to " + std::to_string(max_positions) +
                            "; open a new session with a larger max_positions or shorten the text");
  return session_len - start_pos;
}

}  // namespace duet::protocol
