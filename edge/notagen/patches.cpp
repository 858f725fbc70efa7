#include "edge/notagen/patches.hpp"

#include <stdexcept>

namespace duet::notagen {

namespace {

// Bar lines, longest first where one is a prefix of another (NotaGen's order).
const char* const kBarLines[] = {"|:", "::", ":|", "[|", "||", "|]", "|"};

size_t bar_line_at(const std::string& s, size_t i) {
  for (const char* b : kBarLines) {
    const std::string t(b);
    if (s.compare(i, t.size(), t) == 0) return t.size();
  }
  return 0;
}

bool header_line(const std::string& l) {
  if (!l.empty() && l[0] == '%') return true;
  return l.size() >= 2 && ((l[0] >= 'A' && l[0] <= 'Z') || (l[0] >= 'a' && l[0] <= 'z')) && l[1] == ':';
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

}  // namespace

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t nl = text.find('\n', i);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    if (end - i > (nl == std::string::npos ? 0u : 1u)) out.push_back(text.substr(i, end - i));
    i = end;
  }
  return out;
}

std::vector<std::string> split_bars(const std::string& line) {
  struct Group {
    bool bar;
    std::string text;
  };
  std::vector<Group> groups;
  for (size_t i = 0; i < line.size();) {
    const size_t n = bar_line_at(line, i);
    const bool bar = n > 0;
    const std::string part = line.substr(i, bar ? n : 1);
    if (!groups.empty() && groups.back().bar == bar) groups.back().text += part;  // runs merge
    else groups.push_back({bar, part});
    i += part.size();
  }
  std::vector<std::string> bars;
  size_t i = 0;
  if (!groups.empty() && !groups[0].bar) bars.push_back(groups[i++].text);
  while (i < groups.size()) {
    std::string t = groups[i].text;
    if (i + 1 < groups.size() && !groups[i + 1].bar) {
      t += groups[i + 1].text;
      i += 2;
    } else {
      i += 1;
    }
    bars.push_back(t);
  }
  if (groups.size() > 1 && bars.size() > 1 && bars.back().find('V') == std::string::npos) {
    bars[bars.size() - 2] += bars.back();
    bars.pop_back();
  }
  return bars;
}

std::vector<std::string> cut(const std::string& text, int64_t size, bool open_end) {
  std::string t = text;
  if (!open_end && t.size() % static_cast<size_t>(size) != 0) t += static_cast<char>(kEos);
  std::vector<std::string> out;
  for (size_t i = 0; i < t.size(); i += static_cast<size_t>(size)) out.push_back(t.substr(i, static_cast<size_t>(size)));
  return out;
}

Patch bos_patch(int64_t size) {
  Patch p(static_cast<size_t>(size), kBos);
  p.back() = kEos;
  return p;
}

Patch to_patch(const std::string& chunk, int64_t size) {
  if (static_cast<int64_t>(chunk.size()) > size) throw std::invalid_argument("notagen: a patch of more than patch_size characters");
  Patch p(static_cast<size_t>(size), kPad);
  for (size_t i = 0; i < chunk.size(); ++i) {
    const auto c = static_cast<unsigned char>(chunk[i]);
    if (c >= 128)
      throw std::invalid_argument("notagen: the prompt holds a non-ASCII byte (0x" +
                                  std::string(1, "0123456789abcdef"[c >> 4]) + std::string(1, "0123456789abcdef"[c & 15]) +
                                  "); NotaGen's characters are ASCII only");
    p[i] = c;
  }
  return p;
}

bool is_eos_patch(const Patch& p) { return p.size() >= 2 && p[0] == kBos && p[1] == kEos; }

std::string patch_text(const Patch& p, size_t from) {
  std::string s;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == kEos) break;
    if (i >= from) s += static_cast<char>(p[i]);
  }
  return s;
}

Patch clean_patch(const Patch& p) {
  Patch out(p);
  bool ended = false;
  for (auto& c : out) {
    if (ended) c = kPad;
    ended = ended || c == kEos;
  }
  return out;
}

PieceLines split_piece(const std::string& text) {
  PieceLines pl;
  bool body = false;
  for (auto& l : split_lines(text)) {
    if (!body && (starts_with(l, "[r:") || starts_with(l, "[V:") || !header_line(l))) body = true;
    (body ? pl.body : pl.meta).push_back(l);
  }
  return pl;
}

EncodedPrompt encode_prompt(const PieceLines& lines, int64_t size) {
  EncodedPrompt e;
  e.patches.push_back(bos_patch(size));
  for (const auto& l : lines.meta)
    for (const auto& c : cut(l, size)) e.patches.push_back(to_patch(c, size));
  std::vector<std::string> bars;
  for (const auto& l : lines.body)
    for (auto& b : split_bars(l)) bars.push_back(std::move(b));
  for (size_t k = 0; k < bars.size(); ++k) {
    const auto chunks = cut(bars[k], size, /*open_end=*/k + 1 == bars.size());
    for (const auto& c : chunks) {
      if (static_cast<int64_t>(c.size()) < size && (c.empty() || c.back() != static_cast<char>(kEos))) {
        for (unsigned char ch : c) e.prefix.push_back(to_patch(std::string(1, static_cast<char>(ch)), 1)[0]);
      } else {
        e.patches.push_back(to_patch(c, size));
      }
    }
  }
  return e;
}

EncodedPrompt reencode_tail(const std::string& text, int64_t size, int64_t budget) {
  if (budget < 2) throw std::invalid_argument("notagen: a patch budget below 2 leaves no room for the piece");
  PieceLines pl = split_piece(text);
  // NotaGen keeps the last half of the body lines (cut_index = lines / 2)
  size_t keep = pl.body.size() / 2;
  if (keep == 0 && !pl.body.empty()) keep = 1;
  pl.body.erase(pl.body.begin(), pl.body.end() - static_cast<std::ptrdiff_t>(keep));
  EncodedPrompt e = encode_prompt(pl, size);
  while (static_cast<int64_t>(e.patches.size()) > budget && pl.body.size() > 1) {
    pl.body.erase(pl.body.begin());
    e = encode_prompt(pl, size);
  }
  if (static_cast<int64_t>(e.patches.size()) > budget) {
    // one line longer than the budget, or metadata alone too long: keep BOS + the last patches
    const int64_t n_meta = 1;
    std::vector<Patch> kept(e.patches.begin(), e.patches.begin() + n_meta);
    kept.insert(kept.end(), e.patches.end() - (budget - n_meta), e.patches.end());
    e.patches = std::move(kept);
  }
  return e;
}

std::string strip_stream_markers(const std::string& text) {
  std::string out;
  for (size_t i = 0; i < text.size();) {  // every line, empty ones too
    const size_t nl = text.find('\n', i);
    const size_t end = nl == std::string::npos ? text.size() : nl + 1;
    size_t from = i;
    if (text.compare(i, 3, "[r:") == 0) {
      const size_t close = text.find(']', i);
      if (close != std::string::npos && close < end) from = close + 1;
    }
    out.append(text, from, end - from);
    i = end;
  }
  return out;
}

std::string StreamMarkerFilter::push(const std::string& text) {
  static const std::string marker = "[r:";
  std::string out;
  held_ += text;
  while (!held_.empty()) {
    if (!mid_line_) {
      // a line's start: wait while it may still become "[r:...]"
      const bool open = held_.find_first_of("]\n") == std::string::npos;
      if (open && (held_.rfind(marker, 0) == 0 || marker.compare(0, held_.size(), held_) == 0)) break;
      if (held_.rfind(marker, 0) == 0) {
        const size_t close = held_.find(']');
        if (close != std::string::npos && close < held_.find('\n')) held_.erase(0, close + 1);
      }
      mid_line_ = true;
    }
    const size_t nl = held_.find('\n');
    out += held_.substr(0, nl == std::string::npos ? held_.size() : nl + 1);
    if (nl == std::string::npos) {
      held_.clear();
    } else {
      held_.erase(0, nl + 1);
      mid_line_ = false;
    }
  }
  return out;
}

std::string StreamMarkerFilter::finish() {
  std::string rest;
  rest.swap(held_);
  return rest;
}

}  // namespace duet::notagen
