#include "protocol/fingerprint.hpp"

#include <algorithm>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/evp.h>

namespace duet::protocol {
namespace {

EVP_MD_CTX* md(void* p) { return static_cast<EVP_MD_CTX*>(p); }

std::string hex(const unsigned char* d, unsigned n) {
  static const char digits[] = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = digits[d[i] >> 4];
    s[2 * i + 1] = digits[d[i] & 0xf];
  }
  return s;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(md(ctx_), EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(md(ctx_));
    throw std::runtime_error("OpenSSL could not initialise SHA-256 (EVP_DigestInit_ex failed)");
  }
}

Sha256::~Sha256() { EVP_MD_CTX_free(md(ctx_)); }

void Sha256::update(const void* data, std::size_t size) {
  if (size && EVP_DigestUpdate(md(ctx_), data, size) != 1)
    throw std::runtime_error("OpenSSL SHA-256 update failed");
}

std::string Sha256::final_hex() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_DigestFinal_ex(md(ctx_), out, &len) != 1)
    throw std::runtime_error("OpenSSL SHA-256 finalisation failed (called twice?)");
  return hex(out, len);
}

std::string sha256_hex(const void* data, std::size_t size) {
  Sha256 h;
  h.update(data, size);
  return h.final_hex();
}

std::string sha256_hex(std::string_view bytes) { return sha256_hex(bytes.data(), bytes.size()); }

std::string fingerprint_model(std::string_view config_json_bytes,
                              std::vector<TensorIndexEntry> entries) {
  std::string config;
  try {
    config = nlohmann::json::parse(config_json_bytes.begin(), config_json_bytes.end()).dump();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("model config is not valid JSON: ") + e.what());
  }
  std::sort(entries.begin(), entries.end(),
            [](const TensorIndexEntry& a, const TensorIndexEntry& b) { return a.name < b.name; });
  for (std::size_t i = 1; i < entries.size(); ++i)
    if (entries[i].name == entries[i - 1].name)
      throw std::invalid_argument("tensor index lists \"" + entries[i].name +
                                  "\" twice; a checkpoint's tensor names must be unique");

  Sha256 h;
  h.update("duet-model-fingerprint-v1\n");
  h.update("config " + std::to_string(config.size()) + "\n");
  h.update(config);
  h.update("\n");
  h.update("tensors " + std::to_string(entries.size()) + "\n");
  for (const auto& e : entries) {
    std::string line = std::to_string(e.name.size()) + ":" + e.name + " " + e.dtype + " ";
    for (std::size_t i = 0; i < e.shape.size(); ++i)
      line += (i ? "," : "") + std::to_string(e.shape[i]);
    line += "\n";
    h.update(line);
  }
  return h.final_hex();
}

}  // namespace duet::protocol
