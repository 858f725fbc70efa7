// Loading a tokenizer.json, the encode/decode pipeline, and the stream decoder.
#include "tokenizer.hpp"

#include <fstream>
#include <sstream>
#include <unordered_set>

#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer {
namespace detail {

void Context::fail(const std::string& what) const {
  throw TokenizerError("tokenizer " + origin + ": " + what);
}

void Context::unsupported(const std::string& section, const std::string& type,
                          const std::string& supported) const {
  fail("unsupported " + section + " \"" + type + "\" (supported: " + supported + ")");
}

namespace {

void parse_template(const json& single, const json& specials, PostProcessor& post,
                    const Context& ctx) {
  bool seen_sequence = false;
  for (const auto& item : single) {
    if (item.contains("Sequence")) {
      if (item.at("Sequence").at("id").get<std::string>() != "A")
        ctx.fail("post_processor TemplateProcessing: the single template uses a sequence other than $A");
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const std::string name = item.at("SpecialToken").at("id").get<std::string>();
      if (!specials.contains(name))
        ctx.fail("post_processor TemplateProcessing names special token \"" + name +
                 "\" missing from its special_tokens");
      for (const auto& id : specials.at(name).at("ids"))
        (seen_sequence ? post.suffix : post.prefix).push_back(id.get<std::int32_t>());
    } else {
      ctx.fail("post_processor TemplateProcessing has an unknown template item " + item.dump());
    }
  }
}

}  // namespace

PostProcessor parse_post_processor(const json& j, const Context& ctx) {
  PostProcessor post;
  if (j.is_null()) return post;
  const std::string type = j.at("type").get<std::string>();
  if (type == "ByteLevel") return post;  // offsets only
  if (type == "TemplateProcessing") {
    parse_template(j.at("single"), j.at("special_tokens"), post, ctx);
    return post;
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {  // cls $A sep
    post.prefix.push_back(j.at("cls").at(1).get<std::int32_t>());
    post.suffix.push_back(j.at("sep").at(1).get<std::int32_t>());
    return post;
  }
  if (type == "Sequence") {  // each wraps the result of the ones before it
    for (const auto& p : j.at("processors")) {
      const PostProcessor inner = parse_post_processor(p, ctx);
      post.prefix.insert(post.prefix.begin(), inner.prefix.begin(), inner.prefix.end());
      post.suffix.insert(post.suffix.end(), inner.suffix.begin(), inner.suffix.end());
    }
    return post;
  }
  ctx.unsupported("post_processor", type,
                  "TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing, Sequence");
}

const std::string* TokenizerImpl::token_text(std::int32_t id) const {
  if (const auto it = added_by_id.find(id); it != added_by_id.end()) return &added[it->second].content;
  return model->id_to_token(id);
}

const std::string* TokenizerImpl::decode_text(std::int32_t id) const {
  if (const auto it = added_by_id.find(id); it != added_by_id.end()) return &added[it->second].decoded_form;
  return model->id_to_token(id);
}

bool TokenizerImpl::is_special(std::int32_t id) const {
  const std::string* t = token_text(id);
  return t && special_contents.count(*t) != 0;
}

std::vector<std::int32_t> TokenizerImpl::encode(std::string_view text, bool add_special_tokens) const {
  if (!unicode::is_valid_utf8(text))
    throw std::invalid_argument("Tokenizer::encode: the text is not valid UTF-8");
  std::vector<std::int32_t> ids;
  if (add_special_tokens) ids = post.prefix;
  const auto split = [](const AddedTokenMatcher& m, std::string_view s) {
    if (m.empty()) return std::vector<AddedTokenMatcher::Segment>{{0, s.size(), nullptr}};
    return m.split(s);
  };
  std::vector<Piece> pieces;
  for (const auto& seg : split(raw_matcher, text)) {
    if (seg.token) {
      ids.push_back(seg.token->id);
      continue;
    }
    if (seg.end == seg.begin) continue;
    std::string piece(text.substr(seg.begin, seg.end - seg.begin));
    if (normalizer) piece = normalizer->normalize(std::move(piece));
    for (const auto& sub : split(normalized_matcher, piece)) {
      if (sub.token) {
        ids.push_back(sub.token->id);
        continue;
      }
      if (sub.end == sub.begin) continue;
      pieces.assign(1, Piece{piece.substr(sub.begin, sub.end - sub.begin),
                             seg.begin == 0 && sub.begin == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
      for (const auto& p : pieces) model->tokenize(p.text, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), post.suffix.begin(), post.suffix.end());
  return ids;
}

std::string TokenizerImpl::decode(const std::int32_t* ids, std::size_t n, bool skip_special,
                                  bool at_start, bool* any_token) const {
  DecodeState s;
  s.at_start = at_start;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string* t = decode_text(ids[i]);
    if (!t || (skip_special && special_contents.count(*t))) continue;  // as tokenizers does
    s.tokens.push_back(*t);
  }
  if (any_token) *any_token = !s.tokens.empty();
  if (!decoder) {  // tokenizers joins with spaces when there is no decoder
    std::string out;
    for (std::size_t i = 0; i < s.tokens.size(); ++i) out += (i ? " " : "") + s.tokens[i];
    return out;
  }
  decoder->decode(s);
  std::string out;
  for (const auto& t : s.tokens) out += t;
  return out;
}

bool TokenizerImpl::stream_windowable() const { return decoder && decoder->windowable(); }

namespace {

std::shared_ptr<TokenizerImpl> load(const json& root, const Context& ctx) {
  if (!root.is_object()) ctx.fail("the top level is not a JSON object");
  if (!root.contains("model")) ctx.fail("no \"model\" section");
  auto impl = std::make_shared<TokenizerImpl>();
  impl->origin = ctx.origin;
  const auto section = [&](const char* key) -> const json& {
    static const json null_json;
    return root.contains(key) ? root.at(key) : null_json;
  };
  impl->model = std::make_unique<BpeModel>(root.at("model"), ctx);
  impl->normalizer = parse_normalizer(section("normalizer"), ctx);
  impl->pre_tokenizer = parse_pre_tokenizer(section("pre_tokenizer"), ctx);
  impl->decoder = parse_decoder(section("decoder"), ctx);
  impl->post = parse_post_processor(section("post_processor"), ctx);
  // "truncation" and "padding" are length policies for batches, not tokenization: not applied.

  impl->max_id = impl->model->max_id();
  for (const auto& a : section("added_tokens")) {
    AddedToken t;
    t.content = a.at("content").get<std::string>();
    t.id = a.at("id").get<std::int32_t>();
    t.single_word = a.value("single_word", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    t.normalized = a.value("normalized", true);
    t.special = a.value("special", false);
    if (t.content.empty()) continue;
    if (t.id < 0) ctx.fail("added token \"" + t.content + "\" has a negative id");
    impl->max_id = std::max(impl->max_id, t.id);
    impl->added.push_back(std::move(t));
  }
  std::vector<const AddedToken*> raw, norm;
  std::vector<std::string> raw_pat, norm_pat;
  for (std::size_t i = 0; i < impl->added.size(); ++i) {
    AddedToken& t = impl->added[i];
    impl->added_by_content[t.content] = t.id;
    impl->added_by_id[t.id] = i;
    if (t.special) impl->special_contents.insert(t.content);
    if (t.normalized) {  // matched against normalized text, in its normalized form
      t.decoded_form = impl->normalizer ? impl->normalizer->normalize(t.content) : t.content;
      norm.push_back(&t);
      norm_pat.push_back(t.decoded_form);
    } else {
      t.decoded_form = t.content;
      raw.push_back(&t);
      raw_pat.push_back(t.content);
    }
  }
  impl->raw_matcher.build(std::move(raw), std::move(raw_pat));
  impl->normalized_matcher.build(std::move(norm), std::move(norm_pat));
  for (std::int32_t id : impl->post.prefix)
    if (!impl->token_text(id)) ctx.fail("post_processor adds id " + std::to_string(id) + ", which names no token");
  for (std::int32_t id : impl->post.suffix)
    if (!impl->token_text(id)) ctx.fail("post_processor adds id " + std::to_string(id) + ", which names no token");
  return impl;
}

}  // namespace
}  // namespace detail

Tokenizer::Tokenizer(std::shared_ptr<const detail::TokenizerImpl> impl) : impl_(std::move(impl)) {}

Tokenizer Tokenizer::from_json(std::string_view json_text, const std::string& origin) {
  const detail::Context ctx{origin};
  detail::json root;
  try {
    root = detail::json::parse(json_text.begin(), json_text.end());
  } catch (const detail::json::exception& e) {
    ctx.fail(std::string("malformed JSON: ") + e.what());
  }
  try {
    return Tokenizer(detail::load(root, ctx));
  } catch (const detail::json::exception& e) {  // a field of the wrong type, a missing key
    ctx.fail(std::string("unexpected tokenizer.json structure: ") + e.what());
  }
}

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw TokenizerError("tokenizer " + path +
                         ": cannot open the file (give the path of a HuggingFace tokenizer.json)");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw TokenizerError("tokenizer " + path + ": read error");
  return from_json(text.str(), path);
}

std::vector<std::int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return impl_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(const std::vector<std::int32_t>& ids, bool skip_special_tokens) const {
  return impl_->decode(ids.data(), ids.size(), skip_special_tokens, true);
}

std::optional<std::int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = impl_->added_by_content.find(std::string(token)); it != impl_->added_by_content.end())
    return it->second;
  return impl_->model->token_to_id(token);
}

std::optional<std::string> Tokenizer::id_to_token(std::int32_t id) const {
  if (const std::string* t = impl_->token_text(id)) return *t;
  return std::nullopt;
}

bool Tokenizer::is_special(std::int32_t id) const { return impl_->is_special(id); }

std::int32_t Tokenizer::vocab_size() const { return impl_->max_id + 1; }

namespace {

std::optional<std::int32_t> first_special(const Tokenizer& t, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (const auto id = t.token_to_id(n); id && t.is_special(*id)) return id;
  for (const char* n : names)
    if (const auto id = t.token_to_id(n)) return id;
  return std::nullopt;
}

}  // namespace

std::optional<std::int32_t> Tokenizer::bos_id() const {
  if (!impl_->post.prefix.empty()) return impl_->post.prefix.front();
  return first_special(*this, {"<s>", "<|begin_of_text|>", "<|startoftext|>", "<bos>", "[BOS]",
                               "<|endoftext|>"});
}

std::optional<std::int32_t> Tokenizer::eos_id() const {
  if (!impl_->post.suffix.empty()) return impl_->post.suffix.back();
  return first_special(*this, {"</s>", "<|endoftext|>", "<|end_of_text|>", "<|eot_id|>",
                               "<|im_end|>", "<eos>", "[EOS]"});
}

// ---- StreamDecoder ------------------------------------------------------------------------------
// The ids not yet settled form a window that is decoded whole at each push; text up to its last
// complete character is returned. Once the window's text ends on a complete character (no
// trailing U+FFFD), it is settled and a new window starts, so each push costs O(window), not
// O(everything so far). Decoders that look ahead (a trailing Strip) keep one window throughout.

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : impl_(tokenizer.impl_), skip_special_(skip_special_tokens) {}

void StreamDecoder::reset() {
  window_.clear();
  emitted_.clear();
  seen_token_ = false;
}

namespace {

// Bytes of `text` without the U+FFFD characters at its end (an incomplete character decodes
// to those, and may still complete).
std::size_t settled_length(const std::string& text) {
  std::size_t n = text.size();
  while (n >= 3 && text.compare(n - 3, 3, "\xEF\xBF\xBD") == 0) n -= 3;
  return n;
}

}  // namespace

std::string StreamDecoder::push(std::int32_t id) {
  window_.push_back(id);
  bool any = false;
  const std::string text = impl_->decode(window_.data(), window_.size(), skip_special_, !seen_token_, &any);
  const std::size_t settled = settled_length(text);
  std::string out;
  if (settled > emitted_.size()) {
    // The text already returned is a prefix of the new text for every supported decoder.
    out = text.substr(emitted_.size(), settled - emitted_.size());
    emitted_ = text.substr(0, settled);
  }
  if (settled == text.size() && impl_->stream_windowable()) {
    seen_token_ = seen_token_ || any;
    window_.clear();
    emitted_.clear();
  }
  return out;
}

std::string StreamDecoder::flush() {
  const std::string text = impl_->decode(window_.data(), window_.size(), skip_special_, !seen_token_);
  std::string out = text.size() > emitted_.size() ? text.substr(emitted_.size()) : std::string();
  reset();
  return out;
}

}  // namespace duet::tokenizer
