#include "common/models/notagen.hpp"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "common/models/gpt2.hpp"

namespace duet::notagen {

namespace {

const std::string kPatch = "patch_level_decoder.";
const std::string kChar = "char_level_decoder.base.";

int64_t positive(const nlohmann::json& j, const std::string& key, const std::string& origin) {
  if (!j.contains(key) || !j.at(key).is_number_integer() || j.at(key).get<int64_t>() <= 0)
    throw std::runtime_error(origin + ": field '" + key + "' must be a positive integer");
  return j.at(key).get<int64_t>();
}

class PatchEmbedding final : public Embedding {
 public:
  torch::Tensor forward(const torch::Tensor& ids, int64_t start) const override {
    if (ids.dim() != 2 || ids.size(1) != patch_size)
      throw std::invalid_argument("notagen: the patch embedding takes ids [n, " + std::to_string(patch_size) +
                                  "] (one row of characters per patch), got " + c10::str(ids.sizes()));
    const int64_t n = ids.size(0);
    if (start < 0 || start + n > wpe.size(0))
      throw std::length_error("notagen: patch positions up to " + std::to_string(start + n) +
                              " exceed the patch context of " + std::to_string(wpe.size(0)));
    // one_hot(ids) @ W.T == the sum of W's columns j*128 + ids[j]: gather P rows, add them up in fp32
    auto idx = ids.to(table.device(), torch::kLong) + offsets;  // [n, P]
    auto sum = torch::embedding(table, idx).to(torch::kFloat).sum(1);  // [n, H]
    return (sum + bias.to(torch::kFloat)).to(table.scalar_type()) + wpe.narrow(0, start, n);
  }
  int64_t patch_size = 16;
  torch::Tensor table, bias, wpe, offsets;  // [P*V, H], [H], [patch_length, H], [P] = j*V
};

class LayerNorm final : public FinalNorm {
 public:
  torch::Tensor forward(const torch::Tensor& x) const override {
    return torch::layer_norm(x, {w.size(0)}, w, b, eps);
  }
  torch::Tensor w, b;
  double eps = 1e-5;
};

}  // namespace

Shape Shape::of(const Checkpoint& ck) {
  const std::string origin = ck.dir() + "/config.json";
  const auto j = nlohmann::json::parse(ck.config_text());
  Shape s;
  s.patch_size = positive(j, "patch_size", origin);
  s.char_layers = positive(j, "char_num_layers", origin);
  s.char_positions = positive(j, "char_positions", origin);
  s.char_vocab = positive(j, "char_vocab_size", origin);
  if (j.contains("stream_markers")) {
    if (!j.at("stream_markers").is_boolean()) throw std::runtime_error(origin + ": field 'stream_markers' must be true or false");
    s.stream_markers = j.at("stream_markers").get<bool>();
  }
  if (s.char_vocab != 128) throw std::runtime_error(origin + ": field 'char_vocab_size' must be 128 (ASCII)");
  if (s.char_positions < s.patch_size)
    throw std::runtime_error(origin + ": field 'char_positions' (" + std::to_string(s.char_positions) +
                             ") must be at least patch_size (" + std::to_string(s.patch_size) + ")");
  return s;
}

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  const Shape s = Shape::of(ck);
  auto e = std::make_unique<PatchEmbedding>();
  e->patch_size = s.patch_size;
  // [H, P*V] -> [P*V, H]: row j*V + c is what character c at place j adds
  e->table = ck.load(kPatch + "patch_embedding.weight", {c.hidden_size, s.patch_size * s.char_vocab}, o).t().contiguous();
  e->bias = ck.load(kPatch + "patch_embedding.bias", {c.hidden_size}, o);
  e->wpe = ck.load(kPatch + "base.wpe.weight", {c.max_positions, c.hidden_size}, o);
  e->offsets = torch::arange(s.patch_size, torch::TensorOptions().dtype(torch::kLong).device(o.device)) * s.char_vocab;
  return e;
}

std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  const auto& c = ck.config();
  if (layer < 0 || layer >= c.num_layers)
    throw std::out_of_range(ck.dir() + ": patch layer " + std::to_string(layer) + " does not exist (the model has " +
                            std::to_string(c.num_layers) + ")");
  return gpt2::load_block_at(ck, kPatch + "base.h." + std::to_string(layer) + ".", o);
}

std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  auto n = std::make_unique<LayerNorm>();
  n->w = ck.load(kPatch + "base.ln_f.weight", {c.hidden_size}, o);
  n->b = ck.load(kPatch + "base.ln_f.bias", {c.hidden_size}, o);
  n->eps = c.norm_eps;
  return n;
}

CharDecoder::CharDecoder(const Checkpoint& ck, const LoadOptions& o) : shape_(Shape::of(ck)), device_(o.device) {
  const auto& c = ck.config();
  const int64_t H = c.hidden_size;
  wte_ = ck.load(kChar + "transformer.wte.weight", {shape_.char_vocab, H}, o);
  wpe_ = ck.load(kChar + "transformer.wpe.weight", {shape_.char_positions, H}, o);
  ln_w_ = ck.load(kChar + "transformer.ln_f.weight", {H}, o);
  ln_b_ = ck.load(kChar + "transformer.ln_f.bias", {H}, o);
  eps_ = c.norm_eps;
  // GPT2LMHeadModel ties its head to wte; the converter drops lm_head.weight when it is that copy
  head_ = ck.has(kChar + "lm_head.weight") ? ck.load(kChar + "lm_head.weight", {shape_.char_vocab, H}, o) : wte_;
  std::vector<std::unique_ptr<Block>> blocks;
  for (int64_t i = 0; i < shape_.char_layers; ++i)
    blocks.push_back(gpt2::load_block_at(ck, kChar + "transformer.h." + std::to_string(i) + ".", o));
  blocks_ = std::make_unique<LocalBackbone>(std::move(blocks), o, shape_.char_positions);
}

CharDecoder::~CharDecoder() = default;

torch::Tensor CharDecoder::logits_of(const torch::Tensor& x, int64_t start) {
  auto h = blocks_->forward(x, start, /*last_only=*/true);  // [1, H]
  h = torch::layer_norm(h, {h.size(1)}, ln_w_, ln_b_, eps_);
  return torch::linear(h, head_).to(torch::kFloat)[0];  // [V]
}

torch::Tensor CharDecoder::begin(const torch::Tensor& h, const std::vector<int32_t>& prefix) {
  torch::NoGradGuard no_grad;
  const int64_t m = static_cast<int64_t>(prefix.size());
  if (m >= shape_.patch_size)
    throw std::invalid_argument("notagen: a patch prefix of " + std::to_string(m) + " characters leaves nothing to write (patch size " +
                                std::to_string(shape_.patch_size) + ")");
  auto first = h.reshape({1, -1}).to(device_, wte_.scalar_type());  // [1, H]
  auto x = first;
  if (m > 0) {
    std::vector<int64_t> ids(prefix.begin(), prefix.end());
    for (int64_t id : ids)
      if (id < 0 || id >= shape_.char_vocab)
        throw std::invalid_argument("notagen: character code " + std::to_string(id) + " is outside ASCII (0-127)");
    auto t = torch::tensor(ids, torch::TensorOptions().dtype(torch::kLong)).to(device_);
    x = torch::cat({first, torch::embedding(wte_, t)}, 0);  // [m+1, H]
  }
  x = x + wpe_.narrow(0, 0, m + 1);
  pos_ = m + 1;
  return logits_of(x, 0);
}

void CharDecoder::check_next() const {
  if (pos_ <= 0) throw std::logic_error("notagen: CharDecoder::next before begin");
  if (pos_ >= shape_.patch_size)
    throw std::logic_error("notagen: the patch already has its " + std::to_string(shape_.patch_size) + " characters");
}

torch::Tensor CharDecoder::next(int32_t c) {
  torch::NoGradGuard no_grad;
  check_next();
  if (c < 0 || c >= shape_.char_vocab)
    throw std::invalid_argument("notagen: character code " + std::to_string(c) + " is outside ASCII (0-127)");
  auto x = wte_.narrow(0, c, 1) + wpe_.narrow(0, pos_, 1);  // [1, H]
  return logits_of(x, pos_++);
}

torch::Tensor CharDecoder::next(const torch::Tensor& c) {
  torch::NoGradGuard no_grad;
  check_next();
  if (c.numel() != 1 || c.scalar_type() != torch::kLong || c.device() != wte_.device())
    throw std::invalid_argument("notagen: CharDecoder::next takes one int64 character on " + wte_.device().str() + ", got " +
                                std::string(c10::toString(c.scalar_type())) + " " + c10::str(c.sizes()) + " on " +
                                c.device().str());
  auto x = torch::embedding(wte_, c.reshape({1})) + wpe_.narrow(0, pos_, 1);  // [1, H]: the row next(int) narrows to
  return logits_of(x, pos_++);
}

torch::Tensor CharDecoder::score(const torch::Tensor& h, const std::vector<int32_t>& patch) {
  torch::NoGradGuard no_grad;
  const int64_t n = static_cast<int64_t>(patch.size());
  if (n < 1 || n > shape_.patch_size) throw std::invalid_argument("notagen: score takes 1 to patch_size characters");
  std::vector<int64_t> ids(patch.begin(), patch.end() - 1);
  auto x = h.reshape({1, -1}).to(device_, wte_.scalar_type());
  if (!ids.empty())
    x = torch::cat({x, torch::embedding(wte_, torch::tensor(ids, torch::TensorOptions().dtype(torch::kLong)).to(device_))}, 0);
  x = x + wpe_.narrow(0, 0, n);
  auto out = blocks_->forward(x, 0, /*last_only=*/false);  // [n, H]
  out = torch::layer_norm(out, {out.size(1)}, ln_w_, ln_b_, eps_);
  pos_ = 0;
  return torch::linear(out, head_).to(torch::kFloat);
}

int64_t CharDecoder::weight_bytes() const {
  int64_t b = 0;
  for (const auto* t : {&wte_, &wpe_, &ln_w_, &ln_b_})
    b += t->numel() * static_cast<int64_t>(t->element_size());
  if (!head_.is_same(wte_)) b += head_.numel() * static_cast<int64_t>(head_.element_size());
  return b + blocks_->weight_bytes();
}

}  // namespace duet::notagen
