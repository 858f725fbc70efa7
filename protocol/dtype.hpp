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
enum class WireDtype : std::uint8_t { f32 = 0, f16 = 1, bf16 = 2 };

// Bytes per element (4, 2, 2).
std::size_t element_size(WireDtype dtype) noexcept;

// Wire/config name: "fp32", "fp16", "bf16".
std::string_view dtype_name(WireDtype dtype) noexcept;

// Parses a name as written on the wire and in config files; nullopt when it is none of them.
std::optional<WireDtype> parse_dtype(std::string_view name) noexcept;

// Like parse_dtype, but throws ProtocolError(bad_dtype) naming the value and the allowed set.
WireDtype parse_dtype_or_throw(std::string_view name);

}  // namespace duet::protocol
