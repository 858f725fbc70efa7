// How the fuzzer (and the seed-corpus test) turns one byte string into message frames:
// frames are separated by kFrameSeparator. 0xc1 is a byte msgpack never uses, so a valid header
// never contains the separator, and the seeds' tensor bytes are chosen to avoid it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "protocol/messages.hpp"

namespace duet::protocol::fuzz {

inline constexpr char kFrameSeparator[] = "\xc1\xc1\xc1\xc1";
inline constexpr std::size_t kFrameSeparatorSize = 4;

inline std::vector<FrameView> split_frames(const std::uint8_t* data, std::size_t size) {
  std::vector<FrameView> frames;
  std::size_t start = 0;
  for (std::size_t i = 0; i + kFrameSeparatorSize <= size;) {
    if (std::memcmp(data + i, kFrameSeparator, kFrameSeparatorSize) == 0) {
      frames.push_back({reinterpret_cast<const std::byte*>(data + start), i - start});
      i += kFrameSeparatorSize;
      start = i;
    } else {
      ++i;
    }
  }
  frames.push_back({reinterpret_cast<const std::byte*>(data + start), size - start});
  return frames;
}

inline std::string join_frames(const std::vector<std::string>& frames) {
  std::string out;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    if (i) out.append(kFrameSeparator, kFrameSeparatorSize);
    out += frames[i];
  }
  return out;
}

}  // namespace duet::protocol::fuzz
