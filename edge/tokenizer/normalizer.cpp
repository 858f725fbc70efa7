// Normalizers: NFC, Prepend, Replace (literal), Strip, Sequence.
#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {
namespace {

class Nfc final : public Normalizer {
 public:
  std::string normalize(std::string text) const override { return unicode::nfc(text); }
};

class Prepend final : public Normalizer {
 public:
  explicit Prepend(std::string p) : prepend_(std::move(p)) {}
  std::string normalize(std::string text) const override {
    return text.empty() ? text : prepend_ + text;  // only non-empty text gets the prefix
  }

 private:
  std::string prepend_;
};

// Replaces every (non-overlapping, left to right) occurrence of a literal.
std::string replace_all(const std::string& text, const std::string& from, const std::string& to) {
  if (from.empty()) return text;
  std::string out;
  std::size_t pos = 0;
  for (std::size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos, std::string::npos);
  return out;
}

class Replace final : public Normalizer {
 public:
  Replace(std::string from, std::string to) : from_(std::move(from)), to_(std::move(to)) {}
  std::string normalize(std::string text) const override { return replace_all(text, from_, to_); }

 private:
  std::string from_, to_;
};

class StripSpaces final : public Normalizer {  // "Strip": Unicode whitespace at either end
 public:
  StripSpaces(bool left, bool right) : left_(left), right_(right) {}
  std::string normalize(std::string text) const override {
    std::size_t b = 0, e = text.size();
    if (left_) {
      while (b < e) {
        std::size_t i = b;
        if (!unicode::is_whitespace(unicode::next_code_point(text, i))) break;
        b = i;
      }
    }
    if (right_) {
      while (e > b) {
        std::size_t start = e - 1;
        while (start > b && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
        std::size_t i = start;
        if (!unicode::is_whitespace(unicode::next_code_point(text, i))) break;
        e = start;
      }
    }
    return text.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

class Sequence final : public Normalizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string text) const override {
    for (const auto& s : steps_) text = s->normalize(std::move(text));
    return text;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

// The literal of a {"String": "..."} pattern; a {"Regex": ...} one is unsupported.
std::string literal_pattern(const json& pattern, const std::string& section, const Context& ctx) {
  if (pattern.contains("String")) return pattern.at("String").get<std::string>();
  if (pattern.contains("Regex"))
    ctx.fail(section + " with a Regex pattern (" + pattern.at("Regex").dump() +
             ") is not supported; only literal String patterns are");
  ctx.fail(section + " has a pattern that is neither String nor Regex: " + pattern.dump());
}

std::unique_ptr<Normalizer> parse_normalizer(const json& j, const Context& ctx) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").get<std::string>();
  if (type == "NFC") return std::make_unique<Nfc>();
  if (type == "Prepend") return std::make_unique<Prepend>(j.at("prepend").get<std::string>());
  if (type == "Replace")
    return std::make_unique<Replace>(literal_pattern(j.at("pattern"), "normalizer Replace", ctx),
                                     j.at("content").get<std::string>());
  if (type == "Strip")
    return std::make_unique<StripSpaces>(j.value("strip_left", true), j.value("strip_right", true));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (const auto& n : j.at("normalizers"))
      if (auto step = parse_normalizer(n, ctx)) steps.push_back(std::move(step));
    return std::make_unique<Sequence>(std::move(steps));
  }
  ctx.unsupported("normalizer", type, "NFC, Prepend, Replace (String pattern), Strip, Sequence");
}

}  // namespace duet::tokenizer::detail
