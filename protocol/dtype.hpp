// Wire dtypes: the element types a tensor frame may carry across the network.
// Activations are computed in whatever dtype the model runs in; the handshake picks the
// (possibly narrower) dtype they cross the link in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace duet::protocol {

// Numeric values are part of the protocol's public contract: never renumber.
//
// int8 carries a scale per row: a frame of shape [rows, hidden] holds rows * hidden int8 values
// (row-major) followed by rows little-endian fp32 scales; element (r, c) is q[r][c] * scale[r].
// The sender picks scale[r] = max |x[r][c]| / 127 and q = round(x / scale), so every element is
// off by at most scale[r] / 2 = max |x[r]| / 254.
enum class WireDtype : std::uint8_t { f32 = 0, f16 = 1, bf16 = 2, i8 = 3 };

// Bytes per element (4, 2, 2, 1), the per-row scales of int8 not counted.
std::size_t element_size(WireDtype dtype) noexcept;
// Bytes a frame carries per row beside its elements (4 for int8's fp32 scale, else 0).
std::size_t row_overhead_bytes(WireDtype dtype) noexcept;

// Wire/config name: "fp32", "fp16", "bf16", "int8".
std::string_view dtype_name(WireDtype dtype) noexcept;

// Parses a name as written on the wire and in config files; nullopt when it is none of them.
std::optional<WireDtype> parse_dtype(std::string_view name) noexcept;

// Like parse_dtype, but throws ProtocolError(bad_dtype) naming the value and the allowed set.
WireDtype parse_dtype_or_throw(std::string_view name);

}  // namespace duet::protocol
