// Model fingerprint: SHA-256 over the model's config and its checkpoint's tensor index, so that
// an edge and a cloud holding different checkpoints refuse each other at hello time.
//
// Canonical serialization hashed by fingerprint_model (version 1), as bytes:
//
//   "duet-model-fingerprint-v1\n"
//   "config " <decimal byte length of C> "\n" C "\n"
//   "tensors " <decimal entry count> "\n"
//   for each entry, sorted by name (bytewise), one line:
//     <decimal byte length of name> ":" name " " dtype " " d0 "," d1 "," ... "\n"
//
// C is the config JSON re-serialized canonically (nlohmann::json dump(): keys sorted, no
// whitespace), so formatting and key order do not matter but every value does. Names are
// length-prefixed so no name can forge a line break. A scalar has an empty dimension list.
// Tensor data bytes are not hashed: the index (names, dtypes, shapes) identifies the
// architecture and split; hashing gigabytes at every start would cost more than it protects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace duet::protocol {

// SHA-256 (OpenSSL EVP) of the bytes, as 64 lowercase hex characters.
std::string sha256_hex(const void* data, std::size_t size);
std::string sha256_hex(std::string_view bytes);

// Incremental form, for data that arrives in pieces.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, std::size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  std::string final_hex();  // once; the object is then spent

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so OpenSSL headers stay out of ours
};

struct TensorIndexEntry {
  std::string name;   // e.g. "model.layers.0.self_attn.q_proj.weight"
  std::string dtype;  // checkpoint dtype as written there, e.g. "BF16", "F32"
  std::vector<std::uint64_t> shape;
};

// The model fingerprint described above. Throws std::invalid_argument when the config is not
// valid JSON or two entries share a name.
std::string fingerprint_model(std::string_view config_json_bytes,
                              std::vector<TensorIndexEntry> entries);

}  // namespace duet::protocol
