// Checks on what a peer sends. Every function throws ProtocolError with the code a reply should
// carry and a sentence saying what was seen and what was required; none of them asserts.
//
// Two layers:
//   - context-free checks, run by decode() (and by encode(), so we never send what the peer
//     would refuse): frame count and bytes, header size, text fields, tensor descriptors;
//   - checks that need what the handshake settled (hidden size, wire dtype, limits) or the
//     session's state: validate_forward, validate_result, check_forward_positions, check_hello*.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "protocol/limits.hpp"
#include "protocol/messages.hpp"

namespace duet::protocol {

// ---- overflow-safe arithmetic -----------------------------------------------------------------

// Return false on overflow (out untouched), true with out = result otherwise.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept;
bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept;

// ---- context-free checks ----------------------------------------------------------------------

// Frame count in [1, limits.max_frames], sum of sizes <= limits.max_message_bytes,
// header frame <= limits.max_header_bytes.
void check_frames(const FrameView* frames, std::size_t count, const DecodeLimits& limits);

// 64 lowercase hex characters (SHA-256). bad_message otherwise.
void check_fingerprint_format(std::string_view fingerprint);

// At most max_chars bytes and no control bytes (UTF-8 passes through unchecked). bad_message.
void check_text(std::string_view field, std::string_view value, std::size_t max_chars);

// product(shape) * element_size (+ shape[0] * row_overhead_bytes: int8's scales), overflow-safe;
// too_large when it does not fit in 64 bits.
std::uint64_t tensor_bytes(const TensorDesc& desc);

// Rank 2 and shape[0] == rows (bad_shape); nothing about the hidden size.
void check_tensor_desc(std::string_view what, const TensorDesc& desc, std::uint64_t rows);

// frame_bytes == tensor_bytes(desc) (frame_size_mismatch).
void check_tensor_frame(std::string_view what, const TensorDesc& desc, std::size_t frame_bytes);

// Every element of a frame checked by check_tensor_frame is finite (fp32/fp16/bf16 exponent not
// all ones; int8: every row's fp32 scale finite): non_finite naming the first bad row otherwise.
// Bit tests on the raw little-endian bytes, no conversion; one pass over the frame.
void check_finite_frame(std::string_view what, const TensorDesc& desc, const void* data, std::size_t frame_bytes);

// The body's own consistency: n >= 1, descriptor matches n, no start_pos + n overflow.
void check_forward_body(const Forward& m);
void check_result_body(const Result& m);

// ---- checks that need the handshake's outcome ----------------------------------------------

// What both sides agreed on at hello time; the daemon checks each forward against it.
struct ForwardContract {
  std::uint32_t hidden_size = 0;
  WireDtype wire_dtype = WireDtype::f32;
  std::uint32_t max_positions_per_forward = 0;
};

// dtype == negotiated (bad_dtype), shape[1] == hidden (bad_shape),
// n_positions in [1, max_positions_per_forward] (position_limit).
void validate_forward(const Forward& m, const ForwardContract& contract);

// Edge side: the result answers `request` (same session, the rows it asked for, at the
// positions it asked for) in the negotiated dtype and hidden size. bad_message/bad_shape/bad_dtype.
void validate_result(const Result& m, const Forward& request, const ForwardContract& contract);

// Cloud side of the handshake: version (unsupported_version), fingerprint (model_mismatch),
// wire dtype in the set this daemon serves (bad_dtype; allowed is a bit set of 1 << WireDtype).
void check_hello(const Hello& m, std::string_view expected_fingerprint,
                 std::uint32_t allowed_dtypes_mask);

// Both sides: the edge keeps blocks [0, edge_blocks), the daemon runs from first_block on; they
// must meet (model_mismatch with a sentence naming both and the flag that fixes it).
void check_block_split(std::uint32_t edge_blocks, std::uint32_t first_block);

// Edge side: the reply's version, fingerprint and dtype are what we asked for.
void check_hello_reply(const HelloReply& m, std::string_view expected_fingerprint,
                       WireDtype requested_dtype);

inline constexpr std::uint32_t dtype_bit(WireDtype d) {
  return std::uint32_t{1} << static_cast<unsigned>(d);
}
inline constexpr std::uint32_t kAllWireDtypes =
    dtype_bit(WireDtype::f32) | dtype_bit(WireDtype::f16) | dtype_bit(WireDtype::bf16) | dtype_bit(WireDtype::i8);

// Session positions, for the daemon, which alone knows the session's length:
//   start_pos >  session_len                -> position_gap (a step was lost or sent twice)
//   start_pos + n > max_positions (no wrap) -> position_limit
//   n == 0                                  -> bad_shape
// Returns how many cached positions the forward overwrites (session_len - start_pos): normally 0;
// more when the edge rewinds after rejected draft tokens. A daemon that cannot truncate its KV
// cache refuses a non-zero result with position_gap.
std::uint32_t check_forward_positions(std::uint32_t session_len, std::uint32_t start_pos,
                                      std::uint32_t n_positions, std::uint32_t max_positions);

}  // namespace duet::protocol
