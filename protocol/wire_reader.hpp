// Private to duet_protocol (includes msgpack): bounded unpacking of a header frame and a strict,
// typed reader for msgpack maps. Nothing outside protocol/*.cpp includes this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <msgpack.hpp>

#include "protocol/limits.hpp"

namespace duet::protocol::detail {

// Unpacks exactly one msgpack object from the header frame with small unpack limits; throws
// ProtocolError for anything malformed, over a limit, or followed by trailing bytes.
// Caller checks the frame size against DecodeLimits first (check_frames).
msgpack::object_handle unpack_header(const std::byte* data, std::size_t size);

// Name of a msgpack type for error sentences ("a string", "a negative integer").
std::string_view type_name(const msgpack::object& o) noexcept;

// Unsigned integer in [0, max]; `what` names the field in the sentence.
std::uint64_t read_uint(const msgpack::object& o, std::string_view what, std::uint64_t max);

// Reads a map with string keys, each at most once, every key consumed exactly by the caller:
// missing, duplicate or unknown keys are bad_message, with the map's name in the sentence.
class MapReader {
 public:
  MapReader(const msgpack::object& o, std::string what);

  std::uint64_t u64(std::string_view key);
  std::uint32_t u32(std::string_view key);
  std::uint16_t u16(std::string_view key);
  std::string str(std::string_view key, std::size_t max_chars);
  MapReader map(std::string_view key);
  std::vector<std::uint64_t> uint_array(std::string_view key, std::size_t max_len);
  // Whether an optional key is present (reading it is still the caller's job).
  bool has(std::string_view key) const;

  // Throws when a key was not read: the grammar's optional fields are read through has().
  void finish() const;

 private:
  const msgpack::object& take(std::string_view key);
  std::string field(std::string_view key) const;

  const msgpack::object_kv* kv_ = nullptr;
  std::size_t size_ = 0;
  std::string what_;
  std::vector<bool> used_;
};

}  // namespace duet::protocol::detail
