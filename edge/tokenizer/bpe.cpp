// The BPE model: vocabulary, ranked merges, unknown tokens, byte fallback.
#include <cstdio>
#include <queue>

#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {

BpeModel::BpeModel(const json& j, const Context& ctx) : origin_(ctx.origin) {
  if (j.contains("type") && j.at("type").get<std::string>() != "BPE")
    ctx.unsupported("model", j.at("type").get<std::string>(), "BPE");
  if (!j.contains("type") && !j.contains("merges"))  // old files name no type; BPE has merges
    ctx.fail("model has neither a \"type\" nor \"merges\": not a BPE model (only BPE is supported)");
  if (!j.contains("vocab") || !j.at("vocab").is_object())
    ctx.fail("model has no \"vocab\" object");
  if (j.contains("dropout") && !j.at("dropout").is_null() && j.at("dropout").get<double>() > 0.0)
    ctx.fail("model BPE with dropout is not supported (it makes encoding random)");

  std::int32_t max_id = -1;
  for (const auto& [token, id_json] : j.at("vocab").items()) {
    const auto id = id_json.get<std::int64_t>();
    if (id < 0 || id > 0x7FFFFFFE) ctx.fail("model vocab id out of range for \"" + token + "\"");
    vocab_[token] = static_cast<std::int32_t>(id);
    max_id = std::max<std::int32_t>(max_id, static_cast<std::int32_t>(id));
  }
  id_to_token_.resize(static_cast<std::size_t>(max_id + 1));
  has_id_.assign(id_to_token_.size(), false);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[static_cast<std::size_t>(id)] = token;
    has_id_[static_cast<std::size_t>(id)] = true;
  }

  const auto opt_string = [&](const char* key) -> std::optional<std::string> {
    if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
    return j.at(key).get<std::string>();
  };
  unk_token_ = opt_string("unk_token");
  prefix_ = opt_string("continuing_subword_prefix").value_or("");
  suffix_ = opt_string("end_of_word_suffix").value_or("");
  fuse_unk_ = j.value("fuse_unk", false);
  byte_fallback_ = j.value("byte_fallback", false);
  ignore_merges_ = j.value("ignore_merges", false);
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    const auto it = vocab_.find(name);
    byte_ids_[b] = it == vocab_.end() ? -1 : it->second;
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs. Rank = position; a pair listed
  // twice keeps its last rank, as tokenizers' map does.
  if (j.contains("merges")) {
    const json& merges = j.at("merges");
    std::uint32_t rank = 0;
    for (const auto& m : merges) {
      std::string a, b;
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const auto sp = s.find(' ');
        if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
          ctx.fail("model merge \"" + s + "\" is not two tokens separated by one space");
        a = s.substr(0, sp);
        b = s.substr(sp + 1);
      } else if (m.is_array() && m.size() == 2) {
        a = m[0].get<std::string>();
        b = m[1].get<std::string>();
      } else {
        ctx.fail("model merge " + m.dump() + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      // The merged token drops b's continuing_subword_prefix (by length, as tokenizers does).
      const std::string merged = a + b.substr(std::min(prefix_.size(), b.size()));
      const auto ia = vocab_.find(a), ib = vocab_.find(b), inew = vocab_.find(merged);
      if (ia == vocab_.end() || ib == vocab_.end() || inew == vocab_.end())
        ctx.fail("model merge (\"" + a + "\", \"" + b + "\") names a token missing from the vocab");
      merges_[pair_key(ia->second, ib->second)] = Merge{rank++, inew->second};
    }
  }
}

std::optional<std::int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(std::string(token));
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(std::int32_t id) const {
  if (id < 0 || static_cast<std::size_t>(id) >= id_to_token_.size() || !has_id_[id]) return nullptr;
  return &id_to_token_[static_cast<std::size_t>(id)];
}

void BpeModel::tokenize(std::string_view word, std::vector<std::int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (const auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  // One symbol per character (or per byte through <0xNN>, or an unknown token).
  std::vector<std::int32_t> ids;
  std::vector<std::size_t> lens;  // bytes of the input each symbol covers
  std::optional<std::pair<std::int32_t, std::size_t>> unk;
  for (std::size_t i = 0; i < word.size();) {
    const std::size_t start = i;
    unicode::next_code_point(word, i);
    std::string s(word.substr(start, i - start));
    const std::size_t byte_len = s.size();
    if (start > 0) s.insert(0, prefix_);
    if (i == word.size()) s += suffix_;
    if (const auto it = vocab_.find(s); it != vocab_.end()) {
      if (unk) {
        ids.push_back(unk->first);
        lens.push_back(unk->second);
        unk.reset();
      }
      ids.push_back(it->second);
      lens.push_back(byte_len);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char b : s) all = all && byte_ids_[b] >= 0;
      if (all) {  // note: a pending unk is not flushed first, as in tokenizers
        for (unsigned char b : s) {
          ids.push_back(byte_ids_[b]);
          lens.push_back(1);
        }
        continue;
      }
    }
    if (unk_token_) {
      const auto unk_id = token_to_id(*unk_token_);
      if (!unk_id)
        throw TokenizerError("tokenizer " + origin_ + ": unk_token \"" + *unk_token_ +
                             "\" is not in the model vocab");
      if (unk && fuse_unk_) {
        unk->second += byte_len;
      } else {
        if (unk) {
          ids.push_back(unk->first);
          lens.push_back(unk->second);
        }
        unk = std::make_pair(*unk_id, byte_len);
      }
    }
    // Without an unk_token an unknown character is dropped, as tokenizers does.
  }
  if (unk) {
    ids.push_back(unk->first);
    lens.push_back(unk->second);
  }
  merge_word(ids, lens);
  out.insert(out.end(), ids.begin(), ids.end());
}

// Applies merges lowest rank first, leftmost first among equal ranks (tokenizers' Word::merge_all).
void BpeModel::merge_word(std::vector<std::int32_t>& ids, std::vector<std::size_t>& lens) const {
  const std::size_t n = ids.size();
  if (n < 2 || merges_.empty()) return;
  std::vector<std::ptrdiff_t> prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    prev[i] = static_cast<std::ptrdiff_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<std::ptrdiff_t>(i + 1) : -1;
  }
  struct Cand { std::uint32_t rank; std::size_t pos; std::int32_t new_id; };
  const auto later = [](const Cand& x, const Cand& y) {  // min-heap on (rank, pos)
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  std::priority_queue<Cand, std::vector<Cand>, decltype(later)> queue(later);
  const auto push = [&](std::size_t pos, std::size_t right) {
    const auto it = merges_.find(pair_key(ids[pos], ids[right]));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.new_id});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!queue.empty()) {
    const Cand top = queue.top();
    queue.pop();
    if (lens[top.pos] == 0 || next[top.pos] < 0) continue;  // removed, or now the last symbol
    const auto right = static_cast<std::size_t>(next[top.pos]);
    const auto it = merges_.find(pair_key(ids[top.pos], ids[right]));
    if (it == merges_.end() || it->second.new_id != top.new_id) continue;  // stale entry
    ids[top.pos] = top.new_id;
    lens[top.pos] += lens[right];
    lens[right] = 0;
    next[top.pos] = next[right];
    if (next[right] >= 0) prev[static_cast<std::size_t>(next[right])] = static_cast<std::ptrdiff_t>(top.pos);
    if (prev[top.pos] >= 0) push(static_cast<std::size_t>(prev[top.pos]), top.pos);
    if (next[top.pos] >= 0) push(top.pos, static_cast<std::size_t>(next[top.pos]));
  }
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (lens[i] != 0) {
      ids[k] = ids[i];
      lens[k++] = lens[i];
    }
  ids.resize(k);
  lens.resize(k);
}

}  // namespace duet::tokenizer::detail
