#include "common/models/gemma.hpp"

#include <torch/torch.h>

#include <cmath>

#include "common/attention.hpp"
#include "common/ops.hpp"

namespace duet::gemma {

namespace {

// Where the language model's tensors live: "model." in Gemma2/3ForCausalLM checkpoints; in the
// multimodal Gemma 3 "language_model.model." as published, "model.language_model." as
// transformers 5 saves it (the vision tower's tensors are never read).
std::string base(const Checkpoint& ck) {
  for (const char* p : {"model.", "language_model.model.", "model.language_model."})
    if (ck.has(std::string(p) + "norm.weight")) return p;
  return "model.";  // the load then names the missing tensor
}

std::string layer_prefix(const Checkpoint& ck, int64_t i) { return base(ck) + "layers." + std::to_string(i) + "."; }

// 1 + w in fp32, as transformers' Gemma RMSNorm multiplies
torch::Tensor one_plus(const Checkpoint& ck, const std::string& name, int64_t size, const LoadOptions& o) {
  return 1.0 + ck.load(name, {size}, o).to(torch::kFloat);
}

class GemmaEmbedding final : public Embedding {
 public:
  GemmaEmbedding(torch::Tensor w, int64_t hidden) : weight(std::move(w)) {
    // transformers: sqrt(hidden) rounded to the weights' dtype before it multiplies
    scale = torch::tensor(std::sqrt(double(hidden)), torch::TensorOptions().dtype(torch::kFloat))
                .to(weight.scalar_type())
                .to(weight.device());
  }
  torch::Tensor forward(const torch::Tensor& ids, int64_t) const override {
    return torch::embedding(weight, ids.to(weight.device())) * scale;
  }
  torch::Tensor weight;  // [vocab, hidden]
  torch::Tensor scale;   // 0-d, weight dtype
};

class GemmaBlock final : public Block {
 public:
  torch::Tensor forward(const torch::Tensor& x_in, const AttentionInput& in, const LayerKvView& kv,
                        const torch::Tensor& keep) const override {
    auto x = x_in;
    const int64_t T = x.size(0);
    auto h = ops::rms_norm_one_plus(x, input_norm, eps);
    auto qkv = torch::linear(h, w_qkv);  // [T, (q_heads + 2 kv_heads) * d]
    auto q = qkv.narrow(1, 0, q_heads * d).view({T, q_heads, d});
    auto k = qkv.narrow(1, q_heads * d, kv_heads * d).view({T, kv_heads, d});
    auto v = qkv.narrow(1, (q_heads + kv_heads) * d, kv_heads * d).view({T, kv_heads, d});
    if (q_norm.defined()) {  // Gemma 3: per-head norms before RoPE
      q = ops::rms_norm_one_plus(q, q_norm, eps);
      k = ops::rms_norm_one_plus(k, k_norm, eps);
    }
    auto qk = apply_rope(in, *rope, torch::cat({q, k}, 1));  // [T, q_heads + kv_heads, d]
    q = qk.narrow(1, 0, q_heads);
    k = qk.narrow(1, q_heads, kv_heads);
    auto attn = attend(in, kv, q, k, v, LayerAttention{scale, softcap, window});  // [T, q_heads * d]
    keep_positions(keep, x, attn);
    auto r = x + ops::rms_norm_one_plus(torch::linear(attn, w_o), post_attn_norm, eps);
    auto h2 = ops::rms_norm_one_plus(r, pre_ff_norm, eps);
    auto gu = torch::linear(h2, w_gate_up);  // [T, 2 * inter]
    auto act = ops::gated_activation(gu, Activation::gelu_tanh);
    return r + ops::rms_norm_one_plus(torch::linear(act, w_down), post_ff_norm, eps);
  }
  KvShape kv_shape() const override { return {kv_heads, d}; }
  int64_t sliding_window() const override { return window; }
  int64_t weight_bytes() const override {
    int64_t b = 0;
    // the norms are kept as 1 + w in fp32; count them as the checkpoint's dtype would
    for (const auto* t : {&w_qkv, &w_o, &w_gate_up, &w_down}) b += t->numel() * int64_t(t->element_size());
    for (const auto* t : {&input_norm, &post_attn_norm, &pre_ff_norm, &post_ff_norm, &q_norm, &k_norm})
      if (t->defined()) b += t->numel() * int64_t(w_qkv.element_size());
    return b;
  }
  int64_t kv_bytes_per_position() const override { return 2 * kv_heads * d * int64_t(w_qkv.element_size()); }

  int64_t q_heads = 0, kv_heads = 0, d = 0, inter = 0, window = 0;
  double eps = 1e-6, scale = 1.0, softcap = 0.0;
  torch::Tensor input_norm, post_attn_norm, pre_ff_norm, post_ff_norm, q_norm, k_norm;  // 1 + w, fp32
  torch::Tensor w_qkv, w_o, w_gate_up, w_down;
  std::shared_ptr<const RopeTable> rope;
};

class GemmaNorm final : public FinalNorm {
 public:
  GemmaNorm(torch::Tensor w, double e) : one_plus_w(std::move(w)), eps(e) {}
  torch::Tensor forward(const torch::Tensor& x) const override { return ops::rms_norm_one_plus(x, one_plus_w, eps); }
  torch::Tensor one_plus_w;
  double eps;
};

class GemmaHead final : public LmHead {
 public:
  GemmaHead(torch::Tensor w, double cap) : weight(std::move(w)), softcap(cap) {}
  torch::Tensor forward(const torch::Tensor& x) const override {
    auto logits = torch::linear(x.to(weight.device()), weight);
    if (softcap > 0) logits = torch::tanh(logits / softcap) * softcap;  // Gemma 2, in the compute dtype
    return logits.to(torch::kFloat);
  }
  torch::Tensor weight;  // [vocab, hidden]
  double softcap;
};

void refuse_biases(const Checkpoint& ck, const std::string& p) {
  for (const char* t : {"self_attn.q_proj.bias", "self_attn.o_proj.bias", "mlp.gate_proj.bias", "mlp.down_proj.bias"})
    if (ck.has(p + t))
      throw std::runtime_error(ck.dir() + ": tensor '" + p + t + "' present: Gemma layers have no biases");
}

}  // namespace

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  return std::make_unique<GemmaEmbedding>(ck.load(base(ck) + "embed_tokens.weight", {c.vocab_size, c.hidden_size}, o),
                                          c.hidden_size);
}

std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  const auto& c = ck.config();
  if (layer < 0 || layer >= c.num_layers)
    throw std::out_of_range(ck.dir() + ": layer " + std::to_string(layer) + " does not exist (the model has " +
                            std::to_string(c.num_layers) + ")");
  auto b = std::make_unique<GemmaBlock>();
  b->q_heads = c.num_heads;
  b->kv_heads = c.num_kv_heads;
  b->d = c.head_dim;
  b->inter = c.intermediate_size;
  b->eps = c.norm_eps;
  b->scale = 1.0 / std::sqrt(c.query_pre_attn_scalar);
  b->softcap = c.attn_softcap;
  b->window = c.window_of(layer);
  const std::string p = layer_prefix(ck, layer);
  refuse_biases(ck, p);
  const int64_t H = c.hidden_size, I = c.intermediate_size, qd = c.num_heads * c.head_dim,
                kvd = c.num_kv_heads * c.head_dim;
  b->input_norm = one_plus(ck, p + "input_layernorm.weight", H, o);
  b->post_attn_norm = one_plus(ck, p + "post_attention_layernorm.weight", H, o);
  b->pre_ff_norm = one_plus(ck, p + "pre_feedforward_layernorm.weight", H, o);
  b->post_ff_norm = one_plus(ck, p + "post_feedforward_layernorm.weight", H, o);
  if (ck.has(p + "self_attn.q_norm.weight")) {
    b->q_norm = one_plus(ck, p + "self_attn.q_norm.weight", c.head_dim, o);
    b->k_norm = one_plus(ck, p + "self_attn.k_norm.weight", c.head_dim, o);
  } else if (c.model_type != "gemma2") {
    ck.info(p + "self_attn.q_norm.weight");  // throws the clear "not found"
  }
  b->w_qkv = torch::cat({ck.load(p + "self_attn.q_proj.weight", {qd, H}, o),
                         ck.load(p + "self_attn.k_proj.weight", {kvd, H}, o),
                         ck.load(p + "self_attn.v_proj.weight", {kvd, H}, o)});
  b->w_o = ck.load(p + "self_attn.o_proj.weight", {H, qd}, o);
  b->w_gate_up = torch::cat({ck.load(p + "mlp.gate_proj.weight", {I, H}, o), ck.load(p + "mlp.up_proj.weight", {I, H}, o)});
  b->w_down = ck.load(p + "mlp.down_proj.weight", {H, I}, o);
  b->rope = shared_rope_table(b->window > 0 ? c.rope_local : c.rope, c.head_dim, c.max_positions, o.dtype, o.device);
  return b;
}

std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  const auto& c = ck.config();
  return std::make_unique<GemmaNorm>(one_plus(ck, base(ck) + "norm.weight", c.hidden_size, o), c.norm_eps);
}

std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ck, const LoadOptions& o, const Embedding* tied_from) {
  const auto& c = ck.config();
  if (!ck.has("lm_head.weight") || c.tie_word_embeddings) {
    if (!c.tie_word_embeddings) ck.info("lm_head.weight");  // throws the clear "not found"
    if (auto* e = dynamic_cast<const GemmaEmbedding*>(tied_from))
      return std::make_unique<GemmaHead>(e->weight, c.final_softcap);
    return std::make_unique<GemmaHead>(ck.load(base(ck) + "embed_tokens.weight", {c.vocab_size, c.hidden_size}, o),
                                       c.final_softcap);
  }
  return std::make_unique<GemmaHead>(ck.load("lm_head.weight", {c.vocab_size, c.hidden_size}, o), c.final_softcap);
}

}  // namespace duet::gemma
