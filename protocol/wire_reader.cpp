#include "protocol/wire_reader.hpp"

#include <limits>
#include <new>

#include "protocol/errors.hpp"

namespace duet::protocol::detail {
namespace {

// Deepest header: envelope array > body map > tensor-desc map > shape array.
constexpr std::size_t kMaxDepth = 4;
// Envelope has 5 entries; the widest body (hello_reply) has 6 keys, ServerLimits 5.
constexpr std::size_t kMaxArray = kMaxTensorRank > 5 ? kMaxTensorRank : 5;
constexpr std::size_t kMaxMap = 16;
constexpr std::size_t kMaxStr = kMaxErrorMessageChars;

[[noreturn]] void bad(const std::string& s) { throw ProtocolError(ErrorCode::bad_message, s); }

}  // namespace

msgpack::object_handle unpack_header(const std::byte* data, std::size_t size) {
  if (size == 0) bad("header frame is empty; expected a msgpack array");
  const msgpack::unpack_limit limit(kMaxArray, kMaxMap, kMaxStr, /*bin=*/0, /*ext=*/0, kMaxDepth);
  std::size_t offset = 0;
  msgpack::object_handle oh;
  try {
    // No reference function: strings are copied into the handle's zone, so the result does
    // not point into the frame.
    oh = msgpack::unpack(reinterpret_cast<const char*>(data), size, offset, nullptr, nullptr,
                         limit);
  } catch (const msgpack::size_overflow& e) {
    throw ProtocolError(ErrorCode::too_large,
                        std::string("header msgpack exceeds a structural limit (") + e.what() +
                            "); headers hold at most " + std::to_string(kMaxMap) +
                            "-entry maps, " + std::to_string(kMaxArray) +
                            "-entry arrays, " + std::to_string(kMaxStr) +
                            "-byte strings, nesting depth " + std::to_string(kMaxDepth) +
                            ", and no bin or ext values");
  } catch (const msgpack::insufficient_bytes&) {
    bad("header frame ends in the middle of a msgpack value (" + std::to_string(size) +
        " bytes); expected one complete msgpack array");
  } catch (const msgpack::unpack_error& e) {
    bad(std::string("header frame is not valid msgpack (") + e.what() + ")");
  } catch (const std::bad_alloc&) {
    throw ProtocolError(ErrorCode::too_large, "header frame needs too much memory to parse");
  }
  if (offset != size)
    bad("header frame has " + std::to_string(size - offset) +
        " trailing bytes after its msgpack array; expected exactly one msgpack value");
  return oh;
}

std::string_view type_name(const msgpack::object& o) noexcept {
  switch (o.type) {
    case msgpack::type::NIL: return "nil";
    case msgpack::type::BOOLEAN: return "a boolean";
    case msgpack::type::POSITIVE_INTEGER: return "an unsigned integer";
    case msgpack::type::NEGATIVE_INTEGER: return "a negative integer";
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64: return "a float";
    case msgpack::type::STR: return "a string";
    case msgpack::type::BIN: return "binary";
    case msgpack::type::ARRAY: return "an array";
    case msgpack::type::MAP: return "a map";
    case msgpack::type::EXT: return "an ext value";
  }
  return "an unknown msgpack type";
}

std::uint64_t read_uint(const msgpack::object& o, std::string_view what, std::uint64_t max) {
  if (o.type != msgpack::type::POSITIVE_INTEGER)
    bad(std::string(what) + " is " + std::string(type_name(o)) +
        "; expected an unsigned integer");
  if (o.via.u64 > max)
    bad(std::string(what) + " is " + std::to_string(o.via.u64) + "; expected at most " +
        std::to_string(max));
  return o.via.u64;
}

MapReader::MapReader(const msgpack::object& o, std::string what) : what_(std::move(what)) {
  if (o.type != msgpack::type::MAP)
    bad(what_ + " is " + std::string(type_name(o)) + "; expected a map");
  kv_ = o.via.map.ptr;
  size_ = o.via.map.size;
  used_.assign(size_, false);
  for (std::size_t i = 0; i < size_; ++i) {
    const msgpack::object& k = kv_[i].key;
    if (k.type != msgpack::type::STR)
      bad(what_ + " has a key that is " + std::string(type_name(k)) + "; keys must be strings");
    const std::string_view ki(k.via.str.ptr, k.via.str.size);
    for (std::size_t j = 0; j < i; ++j) {
      const std::string_view kj(kv_[j].key.via.str.ptr, kv_[j].key.via.str.size);
      if (ki == kj) bad(what_ + " has the key \"" + printable(ki) + "\" twice");
    }
  }
}

std::string MapReader::field(std::string_view key) const {
  return "field \"" + std::string(key) + "\" of " + what_;
}

const msgpack::object& MapReader::take(std::string_view key) {
  for (std::size_t i = 0; i < size_; ++i) {
    const std::string_view k(kv_[i].key.via.str.ptr, kv_[i].key.via.str.size);
    if (k == key) {
      used_[i] = true;
      return kv_[i].val;
    }
  }
  bad(what_ + " lacks the required field \"" + std::string(key) + "\"");
}

std::uint64_t MapReader::u64(std::string_view key) {
  return read_uint(take(key), field(key), std::numeric_limits<std::uint64_t>::max());
}

std::uint32_t MapReader::u32(std::string_view key) {
  return static_cast<std::uint32_t>(
      read_uint(take(key), field(key), std::numeric_limits<std::uint32_t>::max()));
}

std::uint16_t MapReader::u16(std::string_view key) {
  return static_cast<std::uint16_t>(
      read_uint(take(key), field(key), std::numeric_limits<std::uint16_t>::max()));
}

std::string MapReader::str(std::string_view key, std::size_t max_chars) {
  const msgpack::object& o = take(key);
  if (o.type != msgpack::type::STR)
    bad(field(key) + " is " + std::string(type_name(o)) + "; expected a string");
  if (o.via.str.size > max_chars)
    bad(field(key) + " has " + std::to_string(o.via.str.size) + " bytes; at most " +
        std::to_string(max_chars) + " are allowed");
  return std::string(o.via.str.ptr, o.via.str.size);
}

MapReader MapReader::map(std::string_view key) {
  return MapReader(take(key), field(key));
}

std::vector<std::uint64_t> MapReader::uint_array(std::string_view key, std::size_t max_len) {
  const msgpack::object& o = take(key);
  if (o.type != msgpack::type::ARRAY)
    bad(field(key) + " is " + std::string(type_name(o)) + "; expected an array");
  if (o.via.array.size > max_len)
    bad(field(key) + " has " + std::to_string(o.via.array.size) + " entries; at most " +
        std::to_string(max_len) + " are allowed");
  std::vector<std::uint64_t> out;
  out.reserve(o.via.array.size);
  for (std::uint32_t i = 0; i < o.via.array.size; ++i)
    out.push_back(read_uint(o.via.array.ptr[i], field(key) + " entry " + std::to_string(i),
                            std::numeric_limits<std::uint64_t>::max()));
  return out;
}

bool MapReader::has(std::string_view key) const {
  for (std::size_t i = 0; i < size_; ++i)
    if (std::string_view(kv_[i].key.via.str.ptr, kv_[i].key.via.str.size) == key) return true;
  return false;
}

void MapReader::finish() const {
  for (std::size_t i = 0; i < size_; ++i)
    if (!used_[i]) {
      const std::string_view k(kv_[i].key.via.str.ptr, kv_[i].key.via.str.size);
      bad(what_ + " has the unknown field \"" + printable(k) +
          "\"; protocol version 1 defines no such field");
    }
}

}  // namespace duet::protocol::detail
