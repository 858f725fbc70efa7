// Decoders: ByteLevel, Replace (literal), ByteFallback, Fuse, Strip, Metaspace, Sequence.
#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {


namespace {

const char kReplacementChar[] = "\xEF\xBF\xBD";  // U+FFFD

class ByteLevelDecoder final : public Decoder {
 public:
  void decode(DecodeState& s) const override {
    std::string bytes;
    for (const auto& t : s.tokens) {
      // A token whose characters all map back to bytes gives those bytes, else its own text.
      std::string mapped;
      bool all = true;
      for (std::size_t i = 0; i < t.size() && all;) {
        const auto b = unicode_to_byte(unicode::next_code_point(t, i));
        if (b) mapped += static_cast<char>(*b);
        else all = false;
      }
      bytes += all ? mapped : t;
    }
    s.tokens.assign(1, unicode::utf8_lossy(bytes));
    s.fused = true;
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  void decode(DecodeState& s) const override {
    if (from_.empty()) return;
    for (auto& t : s.tokens) {
      std::string out;
      std::size_t pos = 0;
      for (std::size_t hit; (hit = t.find(from_, pos)) != std::string::npos; pos = hit + from_.size()) {
        out.append(t, pos, hit - pos);
        out += to_;
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string from_, to_;
};

// <0xNN> tokens in a row become the bytes they name: one string when valid UTF-8, else one
// U+FFFD per byte.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode(DecodeState& s) const override {
    std::vector<std::string> out;
    std::string pending;
    const auto flush = [&] {
      if (pending.empty()) return;
      if (unicode::is_valid_utf8(pending)) out.push_back(pending);
      else
        for (std::size_t i = 0; i < pending.size(); ++i) out.emplace_back(kReplacementChar);
      pending.clear();
    };
    for (auto& t : s.tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        const auto hex = [](char c) {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        const int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending += static_cast<char>(byte);
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    s.tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode(DecodeState& s) const override {
    std::string all;
    for (const auto& t : s.tokens) all += t;
    s.tokens.assign(1, std::move(all));
    s.fused = true;
  }
};

// Removes up to `start` leading and `stop` trailing `content` characters from each token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(char32_t content, std::size_t start, std::size_t stop)
      : content_(content), start_(start), stop_(stop) {}
  void decode(DecodeState& s) const override {
    for (std::size_t k = 0; k < s.tokens.size(); ++k) {
      std::string& t = s.tokens[k];
      std::vector<std::size_t> off;  // byte offset of each character, plus the end
      std::vector<char32_t> cps;
      for (std::size_t i = 0; i < t.size();) {
        off.push_back(i);
        cps.push_back(unicode::next_code_point(t, i));
      }
      off.push_back(t.size());
      // The first token of a fused window is not the start of the text: leave its head alone.
      const std::size_t start = (k == 0 && s.fused && !s.at_start) ? 0 : start_;
      std::size_t b = 0;
      while (b < start && b < cps.size() && cps[b] == content_) ++b;
      std::size_t e = cps.size();
      for (std::size_t i = 0; i < stop_ && e > b && cps[e - 1] == content_; ++i) --e;
      t = t.substr(off[b], off[e] - off[b]);
    }
  }
  bool windowable() const override { return stop_ == 0; }

 private:
  char32_t content_;
  std::size_t start_, stop_;
};

// Replacement characters become spaces, except in the first token of the text, where they
// are dropped (the prefix the pre-tokenizer added), unless prepend_scheme is "never".
class MetaspaceDecoder final : public Decoder {
 public:
  MetaspaceDecoder(std::string rep, bool drop_first) : rep_(std::move(rep)), drop_first_(drop_first) {}
  void decode(DecodeState& s) const override {
    for (std::size_t k = 0; k < s.tokens.size(); ++k) {
      std::string& t = s.tokens[k];
      const bool drop = k == 0 && s.at_start && drop_first_;
      std::string out;
      std::size_t pos = 0;
      for (std::size_t hit; (hit = t.find(rep_, pos)) != std::string::npos; pos = hit + rep_.size()) {
        out.append(t, pos, hit - pos);
        if (!drop) out += ' ';
      }
      out.append(t, pos, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  std::string rep_;
  bool drop_first_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode(DecodeState& s) const override {
    for (const auto& d : steps_) d->decode(s);
  }
  bool windowable() const override {
    for (const auto& d : steps_)
      if (!d->windowable()) return false;
    return true;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

char32_t single_char(const std::string& s, const std::string& what, const Context& ctx) {
  std::size_t i = 0;
  const char32_t c = s.empty() ? 0 : unicode::next_code_point(s, i);
  if (s.empty() || i != s.size()) ctx.fail(what + " must be a single character, got \"" + s + "\"");
  return c;
}

}  // namespace

std::unique_ptr<Decoder> parse_decoder(const json& j, const Context& ctx) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(literal_pattern(j.at("pattern"), "decoder Replace", ctx),
                                            j.at("content").get<std::string>());
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    const std::string content = j.at("content").get<std::string>();
    return std::make_unique<StripDecoder>(single_char(content, "decoder Strip content", ctx),
                                          j.value("start", std::size_t{0}),
                                          j.value("stop", std::size_t{0}));
  }
  if (type == "Metaspace") {
    const std::string rep = j.at("replacement").get<std::string>();
    single_char(rep, "decoder Metaspace replacement", ctx);
    bool drop_first = true;
    if (j.contains("prepend_scheme")) drop_first = j.at("prepend_scheme").get<std::string>() != "never";
    else if (j.contains("add_prefix_space")) drop_first = j.at("add_prefix_space").get<bool>();
    return std::make_unique<MetaspaceDecoder>(rep, drop_first);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> steps;
    for (const auto& d : j.at("decoders"))
      if (auto step = parse_decoder(d, ctx)) steps.push_back(std::move(step));
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  ctx.unsupported("decoder", type, "ByteLevel, Replace (String pattern), ByteFallback, Fuse, Strip, "
                  "Metaspace, Sequence");
}

}  // namespace duet::tokenizer::detail
