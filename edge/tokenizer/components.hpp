// Internal pieces of the tokenizer pipeline, one per tokenizer.json section. Each `parse_*`
// reads its section and throws TokenizerError (through `Context::fail`) on anything unsupported.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer.hpp"

namespace duet::tokenizer::detail {

using json = nlohmann::json;

// Where a section comes from, for error messages.
struct Context {
  std::string origin;  // file path or "<memory>"
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void unsupported(const std::string& section, const std::string& type,
                                const std::string& supported) const;
};

// ---- normalizers ------------------------------------------------------------------------------
class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string text) const = 0;
};
std::unique_ptr<Normalizer> parse_normalizer(const json& j, const Context& ctx);  // null → none
// The literal of a {"String": ...} pattern; throws for {"Regex": ...} (`section` names the user).
std::string literal_pattern(const json& pattern, const std::string& section, const Context& ctx);

// ---- pre-tokenizers ---------------------------------------------------------------------------
// A piece of text on its way to the model; `at_start` when it begins at offset 0 of the input
// (Metaspace's prepend_scheme "first" needs that).
struct Piece {
  std::string text;
  bool at_start = false;
};
class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;  // in place
};
std::unique_ptr<PreTokenizer> parse_pre_tokenizer(const json& j, const Context& ctx);

// The regexes of the GPT-2 / Qwen2 / Llama-3 pre-tokenizers, matched by hand.
enum class SplitRegex { kGpt2, kQwen2, kLlama3 };
std::optional<SplitRegex> known_split_regex(std::string_view pattern);
// Byte ranges [begin, end) of the successive matches of `re` in `text` (they cover it all).
std::vector<std::pair<std::size_t, std::size_t>> find_regex_matches(SplitRegex re,
                                                                    std::string_view text);
// GPT-2's byte ↔ printable-character table.
const std::string& byte_to_unicode(unsigned char b);  // UTF-8 of the stand-in character
std::optional<unsigned char> unicode_to_byte(char32_t cp);

// ---- model ------------------------------------------------------------------------------------
class BpeModel {
 public:
  BpeModel(const json& j, const Context& ctx);
  void tokenize(std::string_view word, std::vector<std::int32_t>& out) const;
  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(std::int32_t id) const;  // nullptr when no such id
  std::int32_t max_id() const { return static_cast<std::int32_t>(id_to_token_.size()) - 1; }

 private:
  struct Merge { std::uint32_t rank; std::int32_t new_id; };
  static std::uint64_t pair_key(std::int32_t a, std::int32_t b) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(a)) << 32) |
           static_cast<std::uint32_t>(b);
  }
  void merge_word(std::vector<std::int32_t>& ids, std::vector<std::size_t>& lens) const;

  std::string origin_;
  std::unordered_map<std::string, std::int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> has_id_;
  std::unordered_map<std::uint64_t, Merge> merges_;
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;  // continuing_subword_prefix, end_of_word_suffix
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::int32_t byte_ids_[256];  // <0xNN> tokens, -1 where absent
};

// ---- decoders ---------------------------------------------------------------------------------
// `at_start`: tokens[0] is the first token of the whole text (false when decoding a later
// window of a stream). `fused`: the list has been joined into one string already.
struct DecodeState {
  std::vector<std::string> tokens;
  bool at_start = true;
  bool fused = false;
};
class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode(DecodeState& s) const = 0;
  // False when the result for later tokens depends on tokens after them (a trailing Strip),
  // which stops a stream from settling text window by window.
  virtual bool windowable() const { return true; }
};
std::unique_ptr<Decoder> parse_decoder(const json& j, const Context& ctx);

// ---- added tokens -----------------------------------------------------------------------------
struct AddedToken {
  std::string content;
  std::int32_t id = 0;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
  // What decoding turns it into: its normalized form when `normalized` (as tokenizers >= 0.22
  // does, so that the decoder undoes the normalizer), else `content`.
  std::string decoded_form;
};
// Splits text on added tokens: leftmost-longest matches, with the single_word/lstrip/rstrip
// rules of the `tokenizers` library.
class AddedTokenMatcher {
 public:
  // `patterns[i]` is what token `tokens[i]` matches (its content, normalized where it says so).
  void build(std::vector<const AddedToken*> tokens, std::vector<std::string> patterns);
  bool empty() const { return tokens_.empty(); }
  struct Segment { std::size_t begin, end; const AddedToken* token; };  // token: nullptr = text
  std::vector<Segment> split(std::string_view text) const;

 private:
  std::vector<const AddedToken*> tokens_;
  std::vector<std::string> patterns_;
  std::vector<std::vector<std::size_t>> by_first_byte_;  // pattern indices, longest first
};

// ---- post-processor ---------------------------------------------------------------------------
struct PostProcessor {
  std::vector<std::int32_t> prefix, suffix;  // ids around the sequence when add_special_tokens
};
PostProcessor parse_post_processor(const json& j, const Context& ctx);

// ---- the whole tokenizer ----------------------------------------------------------------------
struct TokenizerImpl {
  std::string origin;
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<BpeModel> model;
  std::unique_ptr<Decoder> decoder;
  PostProcessor post;
  std::vector<AddedToken> added;
  std::unordered_map<std::string, std::int32_t> added_by_content;
  std::unordered_map<std::int32_t, std::size_t> added_by_id;  // index into `added`
  std::unordered_set<std::string> special_contents;           // skipped by skip_special
  AddedTokenMatcher raw_matcher, normalized_matcher;
  std::int32_t max_id = -1;

  const std::string* token_text(std::int32_t id) const;   // content / model token
  const std::string* decode_text(std::int32_t id) const;  // what the decoder gets
  bool is_special(std::int32_t id) const;
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens) const;
  // Decodes ids[begin, end); `at_start` as in DecodeState.
  std::string decode(const std::int32_t* ids, std::size_t n, bool skip_special, bool at_start,
                     bool* any_token = nullptr) const;
  bool stream_windowable() const;
};

}  // namespace duet::tokenizer::detail
