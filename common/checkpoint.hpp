#pragma once
// A HuggingFace model folder: config.json plus model.safetensors or a sharded
// model.safetensors.index.json. Tensors are read on request only, through mmap, and converted to
// the caller's dtype and device; nothing else in the files is touched.
#include <torch/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/model_config.hpp"
#include "common/safetensors.hpp"

namespace duet {

struct LoadOptions {
  c10::ScalarType dtype = c10::ScalarType::Float;
  c10::Device device = c10::Device(c10::kCPU);
};

class Checkpoint {
 public:
  explicit Checkpoint(const std::string& dir);  // reads config + every shard's index, no weights

  const std::string& dir() const { return dir_; }
  const ModelConfig& config() const { return config_; }
  const std::string& config_text() const { return config_text_; }

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws naming the folder and tensor
  // Every tensor of every shard, sorted by name: what the model fingerprint covers.
  std::vector<const TensorInfo*> all_tensors() const;

  // Reads one tensor, checks its shape, converts it. Throws naming the file and the tensor.
  torch::Tensor load(const std::string& name, const std::vector<int64_t>& expected_shape,
                     const LoadOptions& opts) const;

  uint64_t bytes_read() const { return bytes_read_; }  // file bytes copied out so far

 private:
  std::string dir_;
  std::string config_text_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;
  std::map<std::string, std::pair<const SafetensorsFile*, const TensorInfo*>> index_;
  mutable uint64_t bytes_read_ = 0;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace duet
