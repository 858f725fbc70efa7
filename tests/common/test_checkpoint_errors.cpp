// Bad checkpoints and configs get exceptions that name the file, the tensor or the field.
#include "torch_doctest.hpp"

#include "common/checkpoint.hpp"
#include "common/dtype.hpp"
#include "common/pieces.hpp"

#include <functional>
#include <sstream>
#include "model_writer.hpp"

using namespace duet;
using duet::test::make_temp_dir;
using duet::test::write_text;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

std::string small_llama() {
  return test::write_random_llama(make_temp_dir("ck"), 32, 2, 64, 48, 4, 2);
}

std::string raw_file(uint64_t header_len, const std::string& header, const std::string& data = "") {
  std::string b;
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<char>((header_len >> (8 * i)) & 0xff));
  return b + header + data;
}

}  // namespace

TEST_CASE("a valid folder loads pieces and reports bytes read") {
  auto dir = small_llama();
  Checkpoint ck(dir);
  CHECK(ck.config().family == Family::llama);
  CHECK(ck.config().num_kv_heads == 2);
  LoadOptions o;
  auto e = load_embedding(ck, o);
  CHECK(ck.bytes_read() == 64 * 32 * 4);
  auto b = load_block(ck, 1, o);
  CHECK(b->weight_bytes() > 0);
}

TEST_CASE("missing tensor names the folder and the tensor") {
  auto dir = small_llama();
  Checkpoint ck(dir);
  auto msg = error_of([&] { load_block(ck, 5, LoadOptions{}); });
  CHECK(contains(msg, "layer 5"));
  // drop one tensor: rewrite the file without it
  std::map<std::string, torch::Tensor> t = {{"model.embed_tokens.weight", torch::zeros({64, 32})}};
  test::write_safetensors(dir + "/model.safetensors", t);
  Checkpoint ck2(dir);
  msg = error_of([&] { load_final_norm(ck2, LoadOptions{}); });
  CHECK(contains(msg, "model.norm.weight"));
  CHECK(contains(msg, "not found"));
  CHECK(contains(msg, dir));
}

TEST_CASE("wrong shape names the file, the tensor and both shapes") {
  auto dir = small_llama();
  std::map<std::string, torch::Tensor> t = {{"model.embed_tokens.weight", torch::zeros({64, 31})}};
  test::write_safetensors(dir + "/model.safetensors", t);
  Checkpoint ck(dir);
  auto msg = error_of([&] { load_embedding(ck, LoadOptions{}); });
  CHECK(contains(msg, "model.embed_tokens.weight"));
  CHECK(contains(msg, "[64, 31]"));
  CHECK(contains(msg, "[64, 32]"));
  CHECK(contains(msg, "model.safetensors"));
}

TEST_CASE("truncated and oversized safetensors headers") {
  auto dir = make_temp_dir("st");
  const std::string f = dir + "/x.safetensors";
  write_text(f, "abc");
  CHECK(contains(error_of([&] { SafetensorsFile s(f); }), "shorter than its 8-byte header length"));
  write_text(f, raw_file(1000, "{}"));
  auto msg = error_of([&] { SafetensorsFile s(f); });
  CHECK(contains(msg, "runs past the end of the file"));
  CHECK(contains(msg, f));
  write_text(f, raw_file(uint64_t(1) << 40, "{}"));
  CHECK(contains(error_of([&] { SafetensorsFile s(f); }), "exceeds the format's limit"));
  write_text(f, raw_file(5, "{nope"));
  CHECK(contains(error_of([&] { SafetensorsFile s(f); }), "not valid JSON"));
}

TEST_CASE("bad tensor entries: dtype, offsets, byte counts") {
  auto dir = make_temp_dir("st");
  const std::string f = dir + "/x.safetensors";
  auto with = [&](const std::string& h, const std::string& data) {
    write_text(f, raw_file(h.size(), h, data));
    return error_of([&] { SafetensorsFile s(f); });
  };
  auto msg = with(R"({"w":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0'));
  CHECK(contains(msg, "unsupported dtype I64"));
  CHECK(contains(msg, "'w'"));
  CHECK(contains(with(R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", std::string(8, '\0')),
                 "outside the data section"));
  CHECK(contains(with(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0')),
                 "holds 8 bytes but its shape and dtype need 12"));
  CHECK(contains(with(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", std::string(8, '\0')),
                 "non-integer or negative"));
  CHECK(with(R"({"w":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]}})", std::string(8, '\0')).empty());
}

TEST_CASE("config.json: unsupported architecture, malformed JSON, bad fields") {
  auto dir = small_llama();
  const std::string cfg = dir + "/config.json";
  write_text(cfg, R"({"model_type":"bert","vocab_size":10})");
  auto msg = error_of([&] { Checkpoint ck(dir); });
  CHECK(contains(msg, "model_type"));
  CHECK(contains(msg, "'bert'"));
  CHECK(contains(msg, "config.json"));
  write_text(cfg, R"({"model_type":"llama", )");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "not valid JSON"));
  write_text(cfg, R"({"model_type":"llama","hidden_size":-4,"vocab_size":10})");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "'hidden_size' must be a positive integer"));
  write_text(cfg, R"({"model_type":"llama","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
    "num_attention_heads":4,"num_key_value_heads":3,"vocab_size":64})");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "must divide num_attention_heads"));
  write_text(cfg, R"({"model_type":"llama","hidden_size":32,"intermediate_size":48,"num_hidden_layers":2,
    "num_attention_heads":4,"vocab_size":64,"rope_scaling":{"rope_type":"mrope","factor":4.0}})");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "'rope_scaling.rope_type' is 'mrope'"));
}

TEST_CASE("unsupported dtype and device names are refused clearly") {
  CHECK(contains(error_of([] { parse_dtype("int8"); }), "unknown dtype 'int8'"));
  CHECK((parse_dtype("bf16") == torch::kBFloat16));
  CHECK(contains(error_of([] { parse_device("tpu"); }), "tpu"));
}

TEST_CASE("a folder with no weights, and a sharded index with a bad shard name") {
  auto dir = make_temp_dir("ck");
  write_text(dir + "/config.json", R"({"model_type":"gpt2","n_embd":8,"n_layer":1,"n_head":2,"n_positions":8,"vocab_size":10})");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "no model.safetensors"));
  write_text(dir + "/model.safetensors.index.json", R"({"weight_map":{"wte.weight":"../evil.safetensors"}})");
  CHECK(contains(error_of([&] { Checkpoint ck(dir); }), "plain file name"));
}

TEST_CASE("a sharded checkpoint loads tensors from each shard") {
  auto dir = small_llama();
  Checkpoint whole(dir);
  // split into two shards by layer
  std::map<std::string, torch::Tensor> a, b;
  nlohmann::json wm;
  for (const auto* t : whole.all_tensors()) {
    auto v = whole.load(t->name, t->shape, LoadOptions{});
    const bool first = t->name.find("layers.1.") == std::string::npos;
    (first ? a : b)[t->name] = v;
    wm[t->name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  auto sdir = make_temp_dir("shard");
  test::write_safetensors(sdir + "/model-00001-of-00002.safetensors", a);
  test::write_safetensors(sdir + "/model-00002-of-00002.safetensors", b);
  write_text(sdir + "/model.safetensors.index.json", nlohmann::json{{"weight_map", wm}}.dump());
  std::ifstream src(dir + "/config.json");
  std::stringstream ss;
  ss << src.rdbuf();
  write_text(sdir + "/config.json", ss.str());
  Checkpoint sharded(sdir);
  CHECK(sharded.all_tensors().size() == whole.all_tensors().size());
  auto w1 = sharded.load("model.layers.1.mlp.up_proj.weight", {48, 32}, LoadOptions{});
  auto w2 = whole.load("model.layers.1.mlp.up_proj.weight", {48, 32}, LoadOptions{});
  CHECK(w1.equal(w2));
}
