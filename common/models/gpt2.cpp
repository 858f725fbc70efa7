#include "common/models/gpt2.hpp"

#include <torch/torch.h>

#include <cmath>

#include "common/attention.hpp"
#include "common/ops.hpp"

namespace duet::gpt2 {

namespace {

// Checkpoints saved from GPT2LMHeadModel prefix names with "transformer."; the original
// OpenAI-converted ones do not.
std::string prefix(const Checkpoint& ck) { return ck.has("wte.weight") ? "" : "transformer."; }

class Gpt2Embedding final : public Embedding {
 public:
  torch::Tensor forward(const torch::Tensor& ids, int64_t start) const override {
    const int64_t n = ids.size(0);
    if (start + n > wpe.size(0))
      throw std::length_error("GPT-2 positions up to " + std::to_string(start + n) + " exceed n_positions " +
                              std::to_string(wpe.size(0)));
    return torch::embedding(wte, ids.to(wte.device())) + wpe.narrow(0, start, n);
  }
  torch::Tensor wte, wpe;  // [vocab, hidden], [n_positions, hidden]
};

class Gpt2Block final : public Block {
 public:
  torch::Tensor forward(const torch::Tensor& x_in, const AttentionInput& in, const LayerKvView& kv,
                        const torch::Tensor& keep) const override {
    auto x = x_in;
    const int64_t T = x.size(0), H = heads * d;
    auto h = torch::layer_norm(x, {H}, ln1_w, ln1_b, eps);
    auto qkv = torch::linear(h, w_qkv, b_qkv);  // [T, 3H]
    auto q = qkv.narrow(1, 0, H).view({T, heads, d});
    auto k = qkv.narrow(1, H, H).view({T, heads, d});
    auto v = qkv.narrow(1, 2 * H, H).view({T, heads, d});
    auto attn = attend(in, kv, q, k, v, 1.0 / std::sqrt(double(d)));
    keep_positions(keep, x, attn);
    return finish(x, attn);
  }
  KvShape kv_shape() const override { return {heads, d}; }
  // residual + c_proj(attn), then the MLP: attn [T, H] -> [T, H]
  torch::Tensor finish(const torch::Tensor& x, const torch::Tensor& attn) const {
    const int64_t H = heads * d;
    auto r = x + torch::linear(attn, w_proj, b_proj);
    auto h2 = torch::layer_norm(r, {H}, ln2_w, ln2_b, eps);
    auto m = ops::activation(torch::linear(h2, w_fc, b_fc), act);
    return r + torch::linear(m, w_out, b_out);
  }
  int64_t weight_bytes() const override {
    int64_t b = 0;
    for (const auto* t : {&ln1_w, &ln1_b, &ln2_w, &ln2_b, &w_qkv, &b_qkv, &w_proj, &b_proj, &w_fc, &b_fc, &w_out, &b_out})
      b += t->numel() * static_cast<int64_t>(t->element_size());
    return b;
  }
  int64_t kv_bytes_per_position() const override { return 2 * heads * d * static_cast<int64_t>(w_qkv.element_size()); }

  int64_t heads = 0, d = 0;
  double eps = 1e-5;
  Activation act = Activation::gelu_tanh;
  // Linear weights are transposed at load from Conv1D's [in, out] to [out, in].
  torch::Tensor ln1_w, ln1_b, ln2_w, ln2_b, w_qkv, b_qkv, w_proj, b_proj, w_fc, b_fc, w_out, b_out;
};

class Gpt2Norm final : public FinalNorm {
 public:
  torch::Tensor forward(const torch::Tensor& x) const override {
    return torch::layer_norm(x, {w.size(0)}, w, b, eps);
  }
  torch::Tensor w, b;
  double eps = 1e-5;
};

class Gpt2Head final : public LmHead {
 public:
  explicit Gpt2Head(torch::Tensor w) : weight(std::move(w)) {}
  torch::Tensor forward(const torch::Tensor& x) const override {
    return torch::linear(x.to(weight.device()), weight).to(torch::kFloat);
  }
  torch::Tensor weight;
};

// Conv1D stores [in, out]; keep a contiguous [out, in] so every family uses torch::linear.
torch::Tensor conv1d_weight(const Checkpoint& ck, const std::string& name, int64_t in, int64_t out, const LoadOptions& o) {
  return ck.load(name, {in, out}, o).t().contiguous();
}

}  // namespace

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  const std::string p = prefix(ck);
  auto e = std::make_unique<Gpt2Embedding>();
  e->wte = ck.load(p + "wte.weight", {c.vocab_size, c.hidden_size}, o);
  e->wpe = ck.load(p + "wpe.weight", {c.max_positions, c.hidden_size}, o);
  return e;
}

std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  const auto& c = ck.config();
  if (layer < 0 || layer >= c.num_layers)
    throw std::out_of_range(ck.dir() + ": layer " + std::to_string(layer) + " does not exist (the model has " +
                            std::to_string(c.num_layers) + ")");
  return load_block_at(ck, prefix(ck) + "h." + std::to_string(layer) + ".", o);
}

std::unique_ptr<Block> load_block_at(const Checkpoint& ck, const std::string& p, const LoadOptions& o) {
  const auto& c = ck.config();
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  auto b = std::make_unique<Gpt2Block>();
  b->heads = c.num_heads;
  b->d = c.head_dim;
  b->eps = c.norm_eps;
  b->act = c.activation;
  b->ln1_w = ck.load(p + "ln_1.weight", {H}, o);
  b->ln1_b = ck.load(p + "ln_1.bias", {H}, o);
  b->ln2_w = ck.load(p + "ln_2.weight", {H}, o);
  b->ln2_b = ck.load(p + "ln_2.bias", {H}, o);
  b->w_qkv = conv1d_weight(ck, p + "attn.c_attn.weight", H, 3 * H, o);
  b->b_qkv = ck.load(p + "attn.c_attn.bias", {3 * H}, o);
  b->w_proj = conv1d_weight(ck, p + "attn.c_proj.weight", H, H, o);
  b->b_proj = ck.load(p + "attn.c_proj.bias", {H}, o);
  b->w_fc = conv1d_weight(ck, p + "mlp.c_fc.weight", H, I, o);
  b->b_fc = ck.load(p + "mlp.c_fc.bias", {I}, o);
  b->w_out = conv1d_weight(ck, p + "mlp.c_proj.weight", I, H, o);
  b->b_out = ck.load(p + "mlp.c_proj.bias", {H}, o);
  return b;
}

std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  auto n = std::make_unique<Gpt2Norm>();
  n->w = ck.load(prefix(ck) + "ln_f.weight", {c.hidden_size}, o);
  n->b = ck.load(prefix(ck) + "ln_f.bias", {c.hidden_size}, o);
  n->eps = c.norm_eps;
  return n;
}

std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ck, const LoadOptions& o, const Embedding* tied_from) {
  const auto& c = ck.config();
  if (!c.tie_word_embeddings) return std::make_unique<Gpt2Head>(ck.load("lm_head.weight", {c.vocab_size, c.hidden_size}, o));
  if (auto* e = dynamic_cast<const Gpt2Embedding*>(tied_from)) return std::make_unique<Gpt2Head>(e->wte);
  return std::make_unique<Gpt2Head>(ck.load(prefix(ck) + "wte.weight", {c.vocab_size, c.hidden_size}, o));
}

}  // namespace duet::gpt2
