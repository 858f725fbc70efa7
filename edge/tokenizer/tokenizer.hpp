// Native tokenizers read from HuggingFace `tokenizer.json` files: byte-level BPE (GPT-2, Qwen2,
// Llama-3), SentencePiece-style BPE (Llama, Mistral: Metaspace, byte fallback) and character
// vocabularies (BPE without merges). No LibTorch, no libsentencepiece.
//
// Pipeline, as in the `tokenizers` library: added tokens are split out of the text first, the
// rest is normalized, pre-tokenized into words, each word goes through the BPE model, and the
// post-processor adds BOS/EOS. Decoding maps ids to token strings and runs the decoder chain.
// Anything in a tokenizer.json this code does not implement makes loading throw
// TokenizerError naming the file and the component; it never tokenizes differently in silence.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace duet::tokenizer {

// A tokenizer.json that cannot be read, or asks for something unsupported.
class TokenizerError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
struct TokenizerImpl;
}

// Immutable after loading; cheap to copy (the tables are shared) and safe to use from several
// threads at once.
class Tokenizer {
 public:
  // Reads `path` (a tokenizer.json). Throws TokenizerError.
  static Tokenizer from_file(const std::string& path);
  // Parses tokenizer.json text; `origin` names it in error messages.
  static Tokenizer from_json(std::string_view json_text, const std::string& origin = "<memory>");

  // Ids for `text` (valid UTF-8, else std::invalid_argument). With add_special_tokens the
  // post-processor's template applies (BOS for Llama-style files).
  std::vector<std::int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // Text for `ids`; ids that name no token are skipped, as HuggingFace does. Always valid UTF-8
  // (broken byte sequences become U+FFFD).
  std::string decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<std::int32_t> token_to_id(std::string_view token) const;
  std::optional<std::string> id_to_token(std::int32_t id) const;
  // True for added tokens marked "special" (those skip_special_tokens drops).
  bool is_special(std::int32_t id) const;
  // Largest id of the model vocabulary and the added tokens, plus one: the number of rows an LM
  // head must have at least.
  std::int32_t vocab_size() const;
  // Best effort: the post-processor template's leading/trailing special token, else a special
  // token with a customary name (<s>, <|begin_of_text|>, ... / </s>, <|endoftext|>, ...).
  // A model's generation_config.json, where there is one, is the better source for EOS.
  std::optional<std::int32_t> bos_id() const;
  std::optional<std::int32_t> eos_id() const;

 private:
  friend class StreamDecoder;
  explicit Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl);
  std::shared_ptr<const detail::TokenizerImpl> impl_;
};

// Turns ids arriving one at a time into text, returning only complete UTF-8: a token may end in
// the middle of a character (byte-level and byte-fallback tokens split characters), and such a
// tail is held back until the rest arrives. The concatenation of every push() and the final
// flush() equals Tokenizer::decode of all the ids, with one exception: where the model emits
// bytes that are not valid UTF-8 through byte-fallback tokens, characters already completed and
// emitted stay as they were (decode would turn the whole byte run into U+FFFD).
class StreamDecoder {
 public:
  explicit StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  // New complete text after `id` (often empty while a character is incomplete).
  std::string push(std::int32_t id);
  // Everything held back, incomplete characters as U+FFFD; the decoder is then reset.
  std::string flush();
  void reset();

 private:
  std::shared_ptr<const detail::TokenizerImpl> impl_;
  bool skip_special_;
  std::vector<std::int32_t> window_;  // ids not yet settled
  std::string emitted_;               // the window's text already returned
  bool seen_token_ = false;           // a (not skipped) token came before the window
};

}  // namespace duet::tokenizer
