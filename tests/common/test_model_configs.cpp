// config.json as the published models write it (transformers 4.x layout: rope_theta and
// rope_scaling at the top level) and as transformers 5 saves it (rope_parameters, layer_types):
// what duet reads from each, and the clear refusals of what it does not run.
#include "torch_doctest.hpp"
#include "tests/common/remove_tree.hpp"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/model_config.hpp"
#include "common/rope.hpp"

using namespace duet;
using nlohmann::json;

namespace {

ModelConfig parse(const json& j) { return ModelConfig::from_json_text(j.dump(), "config.json"); }

std::string error_of(const json& j) {
  try {
    parse(j);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

json llama32_1b() {
  return json::parse(R"({"architectures":["LlamaForCausalLM"],"attention_bias":false,"bos_token_id":128000,
    "eos_token_id":128001,"head_dim":64,"hidden_act":"silu","hidden_size":2048,"intermediate_size":8192,
    "max_position_embeddings":131072,"mlp_bias":false,"model_type":"llama","num_attention_heads":32,
    "num_hidden_layers":16,"num_key_value_heads":8,"pretraining_tp":1,"rms_norm_eps":1e-05,
    "rope_scaling":{"factor":32.0,"high_freq_factor":4.0,"low_freq_factor":1.0,
      "original_max_position_embeddings":8192,"rope_type":"llama3"},
    "rope_theta":500000.0,"tie_word_embeddings":true,"torch_dtype":"bfloat16","vocab_size":128256})");
}

json qwen3_06b() {
  return json::parse(R"({"architectures":["Qwen3ForCausalLM"],"attention_bias":false,"bos_token_id":151643,
    "eos_token_id":151645,"head_dim":128,"hidden_act":"silu","hidden_size":1024,"intermediate_size":3072,
    "max_position_embeddings":40960,"max_window_layers":28,"model_type":"qwen3","num_attention_heads":16,
    "num_hidden_layers":28,"num_key_value_heads":8,"rms_norm_eps":1e-06,"rope_scaling":null,"rope_theta":1000000,
    "sliding_window":null,"tie_word_embeddings":true,"use_sliding_window":false,"vocab_size":151936})");
}

json gemma3_1b() {
  return json::parse(R"({"architectures":["Gemma3ForCausalLM"],"attention_bias":false,"attn_logit_softcapping":null,
    "bos_token_id":2,"cache_implementation":"hybrid","eos_token_id":[1,106],"final_logit_softcapping":null,
    "head_dim":256,"hidden_activation":"gelu_pytorch_tanh","hidden_size":1152,"intermediate_size":6912,
    "max_position_embeddings":32768,"model_type":"gemma3_text","num_attention_heads":4,"num_hidden_layers":26,
    "num_key_value_heads":1,"pad_token_id":0,"query_pre_attn_scalar":256,"rms_norm_eps":1e-06,
    "rope_local_base_freq":10000,"rope_scaling":null,"rope_theta":1000000,"sliding_window":512,
    "sliding_window_pattern":6,"vocab_size":262144})");
}

json gemma2_2b() {
  return json::parse(R"({"architectures":["Gemma2ForCausalLM"],"attention_bias":false,"attn_logit_softcapping":50.0,
    "bos_token_id":2,"cache_implementation":"hybrid","eos_token_id":[1,107],"final_logit_softcapping":30.0,
    "head_dim":256,"hidden_act":"gelu_pytorch_tanh","hidden_activation":"gelu_pytorch_tanh","hidden_size":2304,
    "intermediate_size":9216,"max_position_embeddings":8192,"model_type":"gemma2","num_attention_heads":8,
    "num_hidden_layers":26,"num_key_value_heads":4,"pad_token_id":0,"query_pre_attn_scalar":256,
    "rms_norm_eps":1e-06,"rope_theta":10000.0,"sliding_window":4096,"vocab_size":256000})");
}

json phi3(int64_t heads, int64_t kv, double partial, int64_t factors) {
  json j = json::parse(R"({"architectures":["Phi3ForCausalLM"],"model_type":"phi3","hidden_act":"silu",
    "hidden_size":3072,"intermediate_size":8192,"num_hidden_layers":32,"max_position_embeddings":131072,
    "original_max_position_embeddings":4096,"rms_norm_eps":1e-05,"rope_theta":10000.0,"sliding_window":262144,
    "tie_word_embeddings":false,"vocab_size":32064,"bos_token_id":1,"eos_token_id":32000})");
  j["num_attention_heads"] = heads;
  j["num_key_value_heads"] = kv;
  if (partial != 1.0) j["partial_rotary_factor"] = partial;
  std::vector<double> s(static_cast<size_t>(factors)), l(static_cast<size_t>(factors));
  for (int64_t i = 0; i < factors; ++i) {
    s[size_t(i)] = 1.0 + 0.01 * double(i);
    l[size_t(i)] = 1.0 + double(i);
  }
  j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", s}, {"long_factor", l}};
  return j;
}

}  // namespace

TEST_CASE("published configs: Llama 3.2, SmolLM2, Qwen3, Qwen2.5 with YaRN, Mistral") {
  auto l = parse(llama32_1b());
  CHECK(l.family == Family::llama);
  CHECK(l.rope.type == RopeType::llama3);
  CHECK(l.rope.theta == 500000.0);
  CHECK(l.rope.factor == 32.0);
  CHECK(l.rope.original_max_positions == 8192);
  CHECK(l.max_positions == 131072);
  CHECK(l.tie_word_embeddings);
  CHECK(l.window_of(0) == 0);

  auto smol = json::parse(R"({"model_type":"llama","hidden_size":576,"intermediate_size":1536,"num_hidden_layers":30,
    "num_attention_heads":9,"num_key_value_heads":3,"max_position_embeddings":8192,"rope_theta":100000,
    "rms_norm_eps":1e-05,"tie_word_embeddings":true,"vocab_size":49152,"rope_scaling":null})");
  auto sm = parse(smol);
  CHECK(sm.head_dim == 64);
  CHECK(sm.rope.type == RopeType::default_);

  auto q = parse(qwen3_06b());
  CHECK(q.head_dim == 128);  // not hidden / heads (64)
  CHECK(q.rope.type == RopeType::default_);
  CHECK(q.sliding_window == 0);
  CHECK(q.window_of(27) == 0);

  auto yarn = qwen3_06b();
  yarn["model_type"] = "qwen2";
  yarn["max_position_embeddings"] = 32768;
  yarn["rope_scaling"] = {{"factor", 4.0}, {"original_max_position_embeddings", 32768}, {"type", "yarn"}};
  auto y = parse(yarn);
  CHECK(y.rope.type == RopeType::yarn);
  CHECK(y.max_positions == 131072);  // factor x the original context
  CHECK(std::abs(y.rope.attention_factor - (0.1 * std::log(4.0) + 1.0)) < 1e-12);

  // Qwen2.5 writes a window but does not use it; with use_sliding_window, layers from max_window_layers on do
  auto qw = qwen3_06b();
  qw["sliding_window"] = 4096;
  CHECK(parse(qw).window_of(27) == 0);
  qw["use_sliding_window"] = true;
  qw["max_window_layers"] = 20;
  CHECK(parse(qw).window_of(19) == 0);
  CHECK(parse(qw).window_of(20) == 4096);

  auto m = json::parse(R"({"model_type":"mistral","hidden_size":4096,"intermediate_size":14336,
    "num_hidden_layers":32,"num_attention_heads":32,"num_key_value_heads":8,"max_position_embeddings":32768,
    "rope_theta":10000.0,"sliding_window":4096,"rms_norm_eps":1e-05,"vocab_size":32000})");
  auto mc = parse(m);
  CHECK(mc.window_of(0) == 4096);
  CHECK(mc.window_of(31) == 4096);
}

TEST_CASE("published configs: Gemma 2 and Gemma 3 (layer pattern, per-layer RoPE, soft-caps)") {
  auto g3 = parse(gemma3_1b());
  CHECK(g3.family == Family::gemma);
  CHECK(g3.head_dim == 256);
  CHECK(g3.query_pre_attn_scalar == 256);
  CHECK(g3.attn_softcap == 0);
  CHECK(g3.final_softcap == 0);
  for (int64_t i = 0; i < 26; ++i) CHECK(g3.window_of(i) == ((i + 1) % 6 == 0 ? 0 : 512));
  CHECK(g3.rope.theta == 1000000.0);
  CHECK(g3.rope_local.theta == 10000.0);
  CHECK(g3.rope_local.type == RopeType::default_);
  CHECK(g3.eos_token_ids == std::vector<int32_t>{1, 106});

  auto scaled = gemma3_1b();  // Gemma 3 4B's text part: linear x8 on the global layers only
  scaled["rope_scaling"] = {{"factor", 8.0}, {"rope_type", "linear"}};
  auto s = parse(scaled);
  CHECK(s.rope.type == RopeType::linear);
  CHECK(s.rope.factor == 8.0);
  CHECK(s.rope_local.type == RopeType::default_);

  // transformers 5's own save: rope_parameters per layer type and layer_types
  auto v5 = gemma3_1b();
  v5.erase("rope_scaling");
  v5.erase("rope_theta");
  v5.erase("rope_local_base_freq");
  v5.erase("sliding_window_pattern");
  v5["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1000000.0}}},
                           {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 10000.0}}}};
  json types = json::array();
  for (int i = 0; i < 26; ++i) types.push_back(i % 2 ? "full_attention" : "sliding_attention");
  v5["layer_types"] = types;
  auto p5 = parse(v5);
  CHECK(p5.window_of(0) == 512);
  CHECK(p5.window_of(1) == 0);
  CHECK(p5.rope_local.theta == 10000.0);

  // Gemma 3 4B (multimodal): the language model's config holds only what differs from the defaults
  auto mm = json::parse(R"({"architectures":["Gemma3ForConditionalGeneration"],"model_type":"gemma3",
    "boi_token_index":255999,"eoi_token_index":256000,"eos_token_id":[1,106],"image_token_index":262144,
    "mm_tokens_per_image":256,"text_config":{"hidden_size":2560,"intermediate_size":10240,"model_type":"gemma3_text",
      "num_hidden_layers":34,"rope_scaling":{"factor":8.0,"rope_type":"linear"},"sliding_window":1024},
    "vision_config":{"hidden_size":1152,"model_type":"siglip_vision_model"}})");
  auto g4 = parse(mm);
  CHECK(g4.family == Family::gemma);
  CHECK(g4.hidden_size == 2560);
  CHECK(g4.num_heads == 8);
  CHECK(g4.num_kv_heads == 4);
  CHECK(g4.head_dim == 256);
  CHECK(g4.vocab_size == 262208);
  CHECK(g4.window_of(0) == 1024);
  CHECK(g4.window_of(5) == 0);
  CHECK(g4.rope.type == RopeType::linear);
  CHECK(g4.rope.theta == 1000000.0);
  CHECK(g4.rope_local.theta == 10000.0);
  CHECK(g4.eos_token_ids == std::vector<int32_t>{1, 106});
  mm.erase("text_config");
  CHECK(contains(error_of(mm), "'text_config' is missing"));

  auto g2 = parse(gemma2_2b());
  CHECK(g2.attn_softcap == 50.0);
  CHECK(g2.final_softcap == 30.0);
  CHECK(g2.window_of(0) == 4096);  // even layers slide
  CHECK(g2.window_of(1) == 0);
  CHECK(g2.rope_local == g2.rope);
}

TEST_CASE("published configs: Phi-3 mini 128k (longrope) and Phi-4 mini (partial rotary)") {
  auto p = parse(phi3(32, 32, 1.0, 48));
  CHECK(p.rope.type == RopeType::longrope);
  CHECK(p.rope.original_max_positions == 4096);
  CHECK(p.rope.factor == 32.0);
  CHECK(std::abs(p.rope.attention_factor - std::sqrt(1 + std::log(32.0) / std::log(4096.0))) < 1e-12);
  CHECK(p.window_of(0) == 262144);
  auto p4 = parse(phi3(24, 8, 0.75, 48));
  CHECK(p4.rope.partial_rotary_factor == 0.75);
  CHECK(p4.rope.rotary_dim(p4.head_dim) == 96);
  // the factor lists must match the rotated dimensions
  CHECK(contains(error_of(phi3(24, 8, 0.75, 64)), "'rope_scaling.short_factor' must be a list of 48 numbers"));
  auto su = phi3(32, 32, 1.0, 48);  // the old name
  su["rope_scaling"]["type"] = "su";
  CHECK(parse(su).rope.type == RopeType::longrope);
}

TEST_CASE("refused with the field named: unknown RoPE types and keys, partial rotary outside Phi, bad layer types") {
  auto j = llama32_1b();
  j["rope_scaling"] = {{"rope_type", "proportional"}, {"factor", 2.0}};
  CHECK(contains(error_of(j), "'rope_scaling.rope_type' is 'proportional'"));
  j["rope_scaling"] = {{"rope_type", "default"}, {"mrope_section", {16, 24, 24}}};
  CHECK(contains(error_of(j), "'rope_scaling.mrope_section' is not supported"));
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
  CHECK(contains(error_of(j), "'rope_scaling.low_freq_factor' is missing"));
  j = llama32_1b();
  j["partial_rotary_factor"] = 0.5;
  CHECK(contains(error_of(j), "partial_rotary_factor"));
  auto g = gemma3_1b();
  g["layer_types"] = json::array({"chunked_attention"});
  CHECK(contains(error_of(g), "'layer_types' must list one type per layer"));
  g = gemma2_2b();
  g["hidden_activation"] = "relu";
  CHECK(contains(error_of(g), "'hidden_activation' is 'relu'"));
}

TEST_CASE("RoPE tables: dynamic and longrope rows within the original context are the plain ones") {
  RopeSpec plain;
  plain.theta = 10000.0;
  RopeSpec dyn = plain;
  dyn.type = RopeType::dynamic;
  dyn.factor = 2.0;
  dyn.original_max_positions = 16;
  RopeTable a(plain, 8, 32, torch::kFloat, torch::kCPU), b(dyn, 8, 32, torch::kFloat, torch::kCPU);
  CHECK(a.cos.narrow(0, 0, 16).equal(b.cos.narrow(0, 0, 16)));
  CHECK(!a.cos.narrow(0, 16, 16).equal(b.cos.narrow(0, 16, 16)));
  // partial rotary: the dimensions past rotary_dim pass through
  RopeSpec part = plain;
  part.partial_rotary_factor = 0.5;
  RopeTable t(part, 8, 4, torch::kFloat, torch::kCPU);
  REQUIRE(t.rotary_dim() == 4);
  auto x = torch::randn({2, 3, 8});
  auto pos = torch::tensor({1, 3});
  auto y = RopeTable::apply_rows(x, t.cos.index_select(0, pos).unsqueeze(1), t.sin.index_select(0, pos).unsqueeze(1));
  CHECK(y.narrow(-1, 4, 4).equal(x.narrow(-1, 4, 4)));
  CHECK(!y.narrow(-1, 0, 4).equal(x.narrow(-1, 0, 4)));
}

TEST_CASE("generation_config.json's EOS list replaces config.json's (several stop ids)") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("duet-genconfig-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << llama32_1b().dump();
  std::ofstream(dir / "generation_config.json") << R"({"bos_token_id":128000,"eos_token_id":[128001,128008,128009]})";
  auto c = ModelConfig::from_dir(dir.string());
  CHECK(c.eos_token_ids == std::vector<int32_t>{128001, 128008, 128009});
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id":[)";
  CHECK_THROWS_WITH_AS(ModelConfig::from_dir(dir.string()), doctest::Contains("generation_config.json"),
                       std::runtime_error);
  duet::test::remove_tree(dir.string());
}
