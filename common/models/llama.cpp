#include "common/models/llama.hpp"

#include <torch/torch.h>

#include <cmath>
#include <tuple>

#include "common/attention.hpp"
#include "common/ops.hpp"

namespace duet::llama {

namespace {

std::string layer_prefix(int64_t i) { return "model.layers." + std::to_string(i) + "."; }

class LlamaEmbedding final : public Embedding {
 public:
  explicit LlamaEmbedding(torch::Tensor w) : weight(std::move(w)) {}
  torch::Tensor forward(const torch::Tensor& ids, int64_t) const override {
    return torch::embedding(weight, ids.to(weight.device()));
  }
  torch::Tensor weight;  // [vocab, hidden]
};

// Weights are fused at load: one [q+k+v, hidden] projection and one [2*inter, hidden] gate/up.
class LlamaBlock final : public Block {
 public:
  torch::Tensor forward(const torch::Tensor& x_in, const AttentionInput& in, const LayerKvView& kv,
                        const torch::Tensor& keep) const override {
    auto x = x_in;
    const int64_t T = x.size(0);
    auto h = ops::rms_norm(x, input_norm, eps);
    auto qkv = torch::linear(h, w_qkv, b_qkv);  // [T, (q_heads + 2 kv_heads) * d]
    // q and k heads sit side by side: rotate them at once, [T, q_heads + kv_heads, d]
    auto qk = qkv.narrow(1, 0, (q_heads + kv_heads) * d).view({T, q_heads + kv_heads, d});
    auto v = qkv.narrow(1, (q_heads + kv_heads) * d, kv_heads * d).view({T, kv_heads, d});
    if (q_norm.defined())  // Qwen3: RMSNorm over each head's dimensions, before RoPE
      qk = torch::cat({ops::rms_norm(qk.narrow(1, 0, q_heads), q_norm, eps),
                       ops::rms_norm(qk.narrow(1, q_heads, kv_heads), k_norm, eps)}, 1);
    qk = apply_rope(in, *rope, qk);  // contiguous
    auto q = qk.narrow(1, 0, q_heads), k = qk.narrow(1, q_heads, kv_heads);
    auto attn = attend(in, kv, q, k, v, LayerAttention{1.0 / std::sqrt(double(d)), 0.0, window});
    keep_positions(keep, x, attn);
    return finish(x, attn);
  }
  KvShape kv_shape() const override { return {kv_heads, d}; }
  int64_t sliding_window() const override { return window; }
  // residual + o_proj(attn), then the MLP: attn [T, q_heads * d] -> [T, H]
  torch::Tensor finish(const torch::Tensor& x, const torch::Tensor& attn) const {
    auto [r, h2] = ops::add_rms_norm(x, torch::linear(attn, w_o), post_norm, eps);
    auto gu = torch::linear(h2, w_gate_up, b_gate_up);  // [T, 2*inter]
    auto act = ops::gated_activation(gu, Activation::silu);
    return r + torch::linear(act, w_down, b_down);
  }
  int64_t weight_bytes() const override {
    int64_t b = 0;
    for (const auto* t : {&input_norm, &post_norm, &w_qkv, &b_qkv, &w_o, &w_gate_up, &b_gate_up, &w_down, &b_down,
                          &q_norm, &k_norm})
      if (t->defined()) b += t->numel() * static_cast<int64_t>(t->element_size());
    return b;
  }
  int64_t kv_bytes_per_position() const override {
    return 2 * kv_heads * d * static_cast<int64_t>(w_qkv.element_size());
  }

  int64_t q_heads = 0, kv_heads = 0, d = 0, inter = 0, window = 0;
  double eps = 1e-6;
  torch::Tensor input_norm, post_norm, w_qkv, b_qkv, w_o, w_gate_up, b_gate_up, w_down, b_down;
  torch::Tensor q_norm, k_norm;  // [d] (Qwen3), else undefined
  std::shared_ptr<const RopeTable> rope;
};

class LlamaNorm final : public FinalNorm {
 public:
  LlamaNorm(torch::Tensor w, double e) : weight(std::move(w)), eps(e) {}
  torch::Tensor forward(const torch::Tensor& x) const override { return ops::rms_norm(x, weight, eps); }
  torch::Tensor weight;
  double eps;
};

class LlamaHead final : public LmHead {
 public:
  explicit LlamaHead(torch::Tensor w) : weight(std::move(w)) {}
  torch::Tensor forward(const torch::Tensor& x) const override {
    return torch::linear(x.to(weight.device()), weight).to(torch::kFloat);
  }
  torch::Tensor weight;  // [vocab, hidden]
};

torch::Tensor optional_bias(const Checkpoint& ck, const std::string& name, int64_t size, const LoadOptions& o) {
  return ck.has(name) ? ck.load(name, {size}, o) : torch::Tensor();
}

}  // namespace

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  return std::make_unique<LlamaEmbedding>(ck.load("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, o));
}

std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  const auto& c = ck.config();
  if (layer < 0 || layer >= c.num_layers)
    throw std::out_of_range(ck.dir() + ": layer " + std::to_string(layer) + " does not exist (the model has " +
                            std::to_string(c.num_layers) + ")");
  auto b = std::make_unique<LlamaBlock>();
  b->q_heads = c.num_heads;
  b->kv_heads = c.num_kv_heads;
  b->d = c.head_dim;
  b->inter = c.intermediate_size;
  b->eps = c.norm_eps;
  b->window = c.window_of(layer);
  const std::string p = layer_prefix(layer);
  const int64_t H = c.hidden_size, qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  b->input_norm = ck.load(p + "input_layernorm.weight", {H}, o);
  b->post_norm = ck.load(p + "post_attention_layernorm.weight", {H}, o);
  // Phi-3 stores q, k, v fused in that order and gate, up fused in that order: duet's own layout
  const bool fused = ck.has(p + "self_attn.qkv_proj.weight");
  if (fused)
    b->w_qkv = ck.load(p + "self_attn.qkv_proj.weight", {qd + 2 * kvd, H}, o);
  else
    b->w_qkv = torch::cat({ck.load(p + "self_attn.q_proj.weight", {qd, H}, o),
                           ck.load(p + "self_attn.k_proj.weight", {kvd, H}, o),
                           ck.load(p + "self_attn.v_proj.weight", {kvd, H}, o)});
  if (ck.has(p + "self_attn.q_norm.weight")) {
    b->q_norm = ck.load(p + "self_attn.q_norm.weight", {c.head_dim}, o);
    b->k_norm = ck.load(p + "self_attn.k_norm.weight", {c.head_dim}, o);
  }
  auto bq = fused ? torch::Tensor() : optional_bias(ck, p + "self_attn.q_proj.bias", qd, o);
  if (bq.defined())
    b->b_qkv = torch::cat({bq, ck.load(p + "self_attn.k_proj.bias", {kvd}, o), ck.load(p + "self_attn.v_proj.bias", {kvd}, o)});
  b->w_o = ck.load(p + "self_attn.o_proj.weight", {H, qd}, o);
  if (ck.has(p + "self_attn.o_proj.bias"))
    throw std::runtime_error(ck.dir() + ": tensor '" + p + "self_attn.o_proj.bias' present: o_proj bias is not supported");
  const int64_t I = c.intermediate_size;
  if (ck.has(p + "mlp.gate_up_proj.weight")) {
    b->w_gate_up = ck.load(p + "mlp.gate_up_proj.weight", {2 * I, H}, o);
  } else {
    b->w_gate_up =
        torch::cat({ck.load(p + "mlp.gate_proj.weight", {I, H}, o), ck.load(p + "mlp.up_proj.weight", {I, H}, o)});
    auto bg = optional_bias(ck, p + "mlp.gate_proj.bias", I, o);
    if (bg.defined()) b->b_gate_up = torch::cat({bg, ck.load(p + "mlp.up_proj.bias", {I}, o)});
  }
  b->w_down = ck.load(p + "mlp.down_proj.weight", {H, I}, o);
  b->b_down = optional_bias(ck, p + "mlp.down_proj.bias", H, o);
  b->rope = shared_rope_table(b->window > 0 ? c.rope_local : c.rope, c.head_dim, c.max_positions, o.dtype, o.device);
  return b;
}

std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  return std::make_unique<LlamaNorm>(ck.load("model.norm.weight", {c.hidden_size}, o), c.norm_eps);
}

std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ck, const LoadOptions& o, const Embedding* tied_from) {
  const auto& c = ck.config();
  // Tied models may still ship lm_head.weight; an untied one must.
  if (!ck.has("lm_head.weight") || c.tie_word_embeddings) {
    if (!c.tie_word_embeddings) ck.info("lm_head.weight");  // throws the clear "not found"
    if (auto* e = dynamic_cast<const LlamaEmbedding*>(tied_from)) return std::make_unique<LlamaHead>(e->weight);
    return std::make_unique<LlamaHead>(ck.load("model.embed_tokens.weight", {c.vocab_size, c.hidden_size}, o));
  }
  return std::make_unique<LlamaHead>(ck.load("lm_head.weight", {c.vocab_size, c.hidden_size}, o));
}

}  // namespace duet::llama
