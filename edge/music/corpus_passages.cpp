#include "edge/music/corpus_passages.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace duet::music {

namespace {

constexpr uint64_t kFnvOffset = 1469598103934665603ull;
constexpr char kMagic[8] = {'D', 'U', 'E', 'T', 'P', 'S', 'G', '1'};
constexpr int kMaxBars = 8;

uint64_t mix(uint64_t h, uint64_t v) {  // FNV-1a over the 8 little-endian bytes of v (corpus_index.py's mix)
  for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  return h;
}

uint32_t read_u32(const unsigned char* p) {
  return uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
}

}  // namespace

uint64_t bar_music_hash(const std::vector<Sound>& bar) {
  uint64_t h = kFnvOffset;
  for (const Sound& s : bar) {
    if (s.notes == 0) {
      h = mix(h, 0);
    } else if (s.notes == 1) {
      h = mix(mix(h, 1), static_cast<uint64_t>(int64_t{s.pitch[0]}));
    } else {
      std::array<int16_t, 4> p = s.pitch;
      const size_t n = std::min<size_t>(static_cast<size_t>(s.notes), p.size());
      std::sort(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(n));
      h = mix(mix(h, 2), n);
      for (size_t i = 0; i < n; ++i) h = mix(h, static_cast<uint64_t>(int64_t{p[i]}));
    }
    h = mix(mix(h, static_cast<uint64_t>(s.len.num)), static_cast<uint64_t>(s.len.den));
  }
  return h;
}

uint32_t passage_fingerprint(const uint64_t* bar_hashes, int bars) {
  uint64_t h = kFnvOffset;
  for (int i = 0; i < bars; ++i) h = mix(h, bar_hashes[i]);
  return static_cast<uint32_t>(h >> 32);
}

CorpusPassages::CorpusPassages(int bars, std::vector<uint32_t> fingerprints) : bars_(bars), fps_(std::move(fingerprints)) {
  std::sort(fps_.begin(), fps_.end());
}

std::shared_ptr<const CorpusPassages> CorpusPassages::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot read the corpus passages (written by scripts/abc/corpus_index.py)");
  const std::vector<unsigned char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto bad = [&](const std::string& what) {
    return std::runtime_error(path + ": " + what + "; rewrite it with scripts/abc/corpus_index.py");
  };
  if (data.size() < 16 || std::memcmp(data.data(), kMagic, 8) != 0) throw bad("not a passage index (no DUETPSG1 header)");
  const uint32_t bars = read_u32(data.data() + 8), n = read_u32(data.data() + 12);
  if (bars < 2 || bars > kMaxBars) throw bad(std::to_string(bars) + " bars per passage (2 to 8 are read)");
  if (data.size() != 16 + 4 * uint64_t{n})
    throw bad(std::to_string(data.size()) + " bytes where " + std::to_string(n) + " fingerprints take " +
              std::to_string(16 + 4 * uint64_t{n}));
  std::vector<uint32_t> fps(n);
  for (uint32_t i = 0; i < n; ++i) fps[i] = read_u32(data.data() + 16 + 4 * uint64_t{i});
  return std::make_shared<const CorpusPassages>(static_cast<int>(bars), std::move(fps));
}

bool CorpusPassages::contains(uint32_t fingerprint) const {
  return std::binary_search(fps_.begin(), fps_.end(), fingerprint);
}

}  // namespace duet::music
