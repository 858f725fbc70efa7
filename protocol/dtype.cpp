#include "protocol/dtype.hpp"

#include <string>

#include "protocol/errors.hpp"

namespace duet::protocol {

std::size_t element_size(WireDtype dtype) noexcept {
  switch (dtype) {
    case WireDtype::f32: return 4;
    case WireDtype::f16: return 2;
    case WireDtype::bf16: return 2;
    case WireDtype::i8: return 1;
  }
  return 0;  // unreachable for valid enumerators; callers only pass parsed values
}

std::size_t row_overhead_bytes(WireDtype dtype) noexcept { return dtype == WireDtype::i8 ? 4 : 0; }

std::string_view dtype_name(WireDtype dtype) noexcept {
  switch (dtype) {
    case WireDtype::f32: return "fp32";
    case WireDtype::f16: return "fp16";
    case WireDtype::bf16: return "bf16";
    case WireDtype::i8: return "int8";
  }
  return "unknown";
}

std::optional<WireDtype> parse_dtype(std::string_view name) noexcept {
  if (name == "fp32") return WireDtype::f32;
  if (name == "fp16") return WireDtype::f16;
  if (name == "bf16") return WireDtype::bf16;
  if (name == "int8") return WireDtype::i8;
  return std::nullopt;
}

WireDtype parse_dtype_or_throw(std::string_view name) {
  if (auto d = parse_dtype(name)) return *d;
  throw ProtocolError(ErrorCode::bad_dtype, "dtype \"" + printable(name, 32) +
                                                "\" is not a wire dtype; expected one of fp32, fp16, bf16, int8");
}

}  // namespace duet::protocol
