// Pre-tokenizers: ByteLevel, Metaspace, Split, Sequence.
#include <algorithm>

#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {


namespace {

// How a split treats the delimiters it found (tokenizers' SplitDelimiterBehavior).
enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

Behavior parse_behavior(const std::string& s, const Context& ctx) {
  if (s == "Removed") return Behavior::kRemoved;
  if (s == "Isolated") return Behavior::kIsolated;
  if (s == "MergedWithPrevious") return Behavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::kMergedWithNext;
  if (s == "Contiguous") return Behavior::kContiguous;
  ctx.unsupported("Split behavior", s,
                  "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
}

struct Range { std::size_t b, e; bool match; };

// Matches (sorted, disjoint) → the ranges covering the text, as tokenizers' Pattern does.
std::vector<Range> cover(const std::vector<std::pair<std::size_t, std::size_t>>& matches,
                         std::size_t size, bool invert) {
  std::vector<Range> out;
  if (size == 0) return {{0, 0, invert}};
  std::size_t prev = 0;
  for (const auto& [b, e] : matches) {
    if (prev != b) out.push_back({prev, b, invert});
    out.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != size) out.push_back({prev, size, invert});
  return out;
}

// Splits every piece at `matches_of(piece)` with `behavior`; empty pieces are dropped.
template <typename MatchFn>
void split_pieces(std::vector<Piece>& pieces, Behavior behavior, bool invert, MatchFn matches_of) {
  std::vector<Piece> out;
  for (const Piece& p : pieces) {
    std::vector<Range> ranges = cover(matches_of(p.text), p.text.size(), invert);
    std::vector<Range> keep;  // `match` here means "remove"
    switch (behavior) {
      case Behavior::kIsolated:
        for (auto r : ranges) keep.push_back({r.b, r.e, false});
        break;
      case Behavior::kRemoved:
        keep = ranges;
        break;
      case Behavior::kContiguous:
        for (auto r : ranges) {
          if (!keep.empty() && keep.back().match == r.match) keep.back().e = r.e;
          else keep.push_back(r);
        }
        for (auto& r : keep) r.match = false;
        break;
      case Behavior::kMergedWithPrevious: {
        bool previous_match = false;
        for (auto r : ranges) {
          if (r.match && !previous_match && !keep.empty()) keep.back().e = r.e;
          else keep.push_back({r.b, r.e, false});
          previous_match = r.match;
        }
        break;
      }
      case Behavior::kMergedWithNext: {
        bool previous_match = false;
        for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
          if (it->match && !previous_match && !keep.empty()) keep.back().b = it->b;
          else keep.push_back({it->b, it->e, false});
          previous_match = it->match;
        }
        std::reverse(keep.begin(), keep.end());
        break;
      }
    }
    for (const auto& r : keep)
      if (!r.match && r.e > r.b) out.push_back({p.text.substr(r.b, r.e - r.b), p.at_start && r.b == 0});
  }
  pieces = std::move(out);
}

std::vector<std::pair<std::size_t, std::size_t>> literal_matches(const std::string& text,
                                                                 const std::string& lit) {
  std::vector<std::pair<std::size_t, std::size_t>> out;
  if (lit.empty()) return out;
  for (std::size_t pos = 0, hit; (hit = text.find(lit, pos)) != std::string::npos;
       pos = hit + lit.size())
    out.emplace_back(hit, hit + lit.size());
  return out;
}

class ByteLevel final : public PreTokenizer {
 public:
  ByteLevel(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    if (use_regex_)
      split_pieces(pieces, Behavior::kIsolated, false, [](const std::string& t) {
        return find_regex_matches(SplitRegex::kGpt2, t);
      });
    for (auto& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (unsigned char b : p.text) mapped += byte_to_unicode(b);
      p.text = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_, use_regex_;
};

enum class PrependScheme { kAlways, kNever, kFirst };

class Metaspace final : public PreTokenizer {
 public:
  Metaspace(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (auto& p : pieces) {
      std::string t;
      t.reserve(p.text.size() + rep_.size());
      for (char c : p.text) {
        if (c == ' ') t += rep_;
        else t += c;
      }
      const bool starts = t.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start)))
        t.insert(0, rep_);
      p.text = std::move(t);
    }
    if (split_)
      split_pieces(pieces, Behavior::kMergedWithNext, false,
                   [this](const std::string& t) { return literal_matches(t, rep_); });
  }

 private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

class Split final : public PreTokenizer {
 public:
  Split(std::optional<SplitRegex> re, std::string literal, Behavior behavior, bool invert)
      : re_(re), literal_(std::move(literal)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    split_pieces(pieces, behavior_, invert_, [this](const std::string& t) {
      return re_ ? find_regex_matches(*re_, t) : literal_matches(t, literal_);
    });
  }

 private:
  std::optional<SplitRegex> re_;
  std::string literal_;
  Behavior behavior_;
  bool invert_;
};

class Sequence final : public PreTokenizer {
 public:
  explicit Sequence(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& s : steps_) s->pre_tokenize(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

}  // namespace

std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& j, const Context& ctx) {
  if (j.is_null()) return nullptr;
  const std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel")
    return std::make_unique<ByteLevel>(j.value("add_prefix_space", true), j.value("use_regex", true));
  if (type == "Metaspace") {
    PrependScheme scheme = PrependScheme::kAlways;
    if (j.contains("prepend_scheme")) {
      const std::string s = j.at("prepend_scheme").get<std::string>();
      if (s == "always") scheme = PrependScheme::kAlways;
      else if (s == "never") scheme = PrependScheme::kNever;
      else if (s == "first") scheme = PrependScheme::kFirst;
      else ctx.unsupported("Metaspace prepend_scheme", s, "always, never, first");
    } else if (j.contains("add_prefix_space")) {  // files older than prepend_scheme
      scheme = j.at("add_prefix_space").get<bool>() ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    return std::make_unique<Metaspace>(j.at("replacement").get<std::string>(), scheme,
                                       j.value("split", true));
  }
  if (type == "Split") {
    const json& pattern = j.at("pattern");
    const Behavior behavior = parse_behavior(j.at("behavior").get<std::string>(), ctx);
    const bool invert = j.value("invert", false);
    if (pattern.contains("Regex")) {
      const std::string re = pattern.at("Regex").get<std::string>();
      const auto known = known_split_regex(re);
      if (!known)
        ctx.fail("pre_tokenizer Split has a regex this tokenizer does not implement: " + re +
                 " (supported: the GPT-2, Qwen2 and Llama-3 pre-tokenizer regexes)");
      return std::make_unique<Split>(known, std::string(), behavior, invert);
    }
    return std::make_unique<Split>(std::nullopt, literal_pattern(pattern, "pre_tokenizer Split", ctx),
                                   behavior, invert);
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& p : j.at("pretokenizers"))
      if (auto step = parse_pre_tokenizer(p, ctx)) steps.push_back(std::move(step));
    return std::make_unique<Sequence>(std::move(steps));
  }
  ctx.unsupported("pre_tokenizer", type, "ByteLevel, Metaspace, Split, Sequence");
}

}  // namespace duet::tokenizer::detail
