// SHA-256 and the model fingerprint: known vectors, a pinned golden value for the canonical
// serialization, insensitivity to what must not matter, sensitivity to what must.
#include <doctest/doctest.h>

#include <algorithm>
#include <stdexcept>

#include "protocol/fingerprint.hpp"
#include "protocol/validate.hpp"

using namespace duet::protocol;

namespace {

const char* kConfig = R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "vocab_size": 100})";

std::vector<TensorIndexEntry> entries() {
  return {{"wte.weight", "F32", {100, 64}},
          {"h.0.attn.c_attn.weight", "F32", {64, 192}},
          {"h.1.ln_1.bias", "F32", {64}},
          {"wpe.weight", "F32", {128, 64}},
          {"scalar", "F32", {}}};
}

}  // namespace

TEST_CASE("sha256 known answers") {
  CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 h;
  h.update("a");
  h.update("bc");
  CHECK(h.final_hex() == sha256_hex("abc"));
}

TEST_CASE("model fingerprint is stable") {
  const std::string fp = fingerprint_model(kConfig, entries());
  CHECK_NOTHROW(check_fingerprint_format(fp));
  // Golden value: changing it means every deployed edge/cloud pair stops matching. Only change
  // it together with the "-v1" tag in the canonical serialization.
  CHECK(fp == "47548621c2cafcf049c54470796a62a101cb3b3b3d9d4ff07b250d7ed513428f");
  // order of entries, JSON whitespace and key order do not matter
  auto shuffled = entries();
  std::reverse(shuffled.begin(), shuffled.end());
  CHECK(fingerprint_model(kConfig, shuffled) == fp);
  CHECK(fingerprint_model(R"({
      "vocab_size": 100, "n_layer": 2,
      "n_embd": 64, "model_type": "gpt2" })",
                          entries()) == fp);
}

TEST_CASE("model fingerprint is sensitive to every part") {
  const std::string fp = fingerprint_model(kConfig, entries());
  auto changed = [&](auto edit) {
    auto e = entries();
    edit(e);
    return fingerprint_model(kConfig, e);
  };
  CHECK(changed([](auto& e) { e[0].shape[0] = 101; }) != fp);
  CHECK(changed([](auto& e) { e[0].dtype = "BF16"; }) != fp);
  CHECK(changed([](auto& e) { e[0].name = "wte.weight2"; }) != fp);
  CHECK(changed([](auto& e) { e.pop_back(); }) != fp);
  CHECK(changed([](auto& e) { e[2].shape = {64, 1}; }) != fp);
  CHECK(changed([](auto& e) { e[4].shape = {1}; }) != fp);
  CHECK(changed([](auto& e) { e.push_back({"extra", "F32", {1}}); }) != fp);
  CHECK(fingerprint_model(R"({"model_type": "gpt2", "n_embd": 64, "n_layer": 3, "vocab_size": 100})",
                          entries()) != fp);
  CHECK(fingerprint_model(kConfig, {}) != fp);
  // shape boundaries cannot be forged by moving digits: [1, 23] vs [12, 3]
  CHECK(fingerprint_model("{}", {{"t", "F32", {1, 23}}}) !=
        fingerprint_model("{}", {{"t", "F32", {12, 3}}}));
}

TEST_CASE("model fingerprint refuses bad input") {
  CHECK_THROWS_AS(fingerprint_model("{not json", entries()), std::invalid_argument);
  auto e = entries();
  e.push_back(e[0]);
  CHECK_THROWS_AS(fingerprint_model(kConfig, e), std::invalid_argument);
}
