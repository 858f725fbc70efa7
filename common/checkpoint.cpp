#include "common/checkpoint.hpp"

#include <torch/torch.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/stat.h>

#include "common/text_file.hpp"

namespace duet {

namespace {

bool file_exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

c10::ScalarType torch_dtype(StDtype d) {
  switch (d) {
    case StDtype::f32: return c10::ScalarType::Float;
    case StDtype::f16: return c10::ScalarType::Half;
    case StDtype::bf16: return c10::ScalarType::BFloat16;
  }
  return c10::ScalarType::Float;
}

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

Checkpoint::Checkpoint(const std::string& dir) : dir_(dir) {
  const std::string config_path = dir + "/config.json";
  config_text_ = read_text_file(config_path);
  config_ = ModelConfig::from_json_text(config_text_, config_path);
  config_.read_generation_config(dir);

  std::vector<std::string> files;
  const std::string single = dir + "/model.safetensors";
  const std::string index_path = dir + "/model.safetensors.index.json";
  if (file_exists(index_path)) {
    nlohmann::json idx;
    try {
      idx = nlohmann::json::parse(read_text_file(index_path));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(index_path + ": not valid JSON: " + e.what());
    }
    if (!idx.contains("weight_map") || !idx["weight_map"].is_object())
      throw std::runtime_error(index_path + ": missing object 'weight_map'");
    std::set<std::string> names;
    for (auto& [tensor, file] : idx["weight_map"].items()) {
      if (!file.is_string()) throw std::runtime_error(index_path + ": weight_map['" + tensor + "'] is not a file name");
      const std::string f = file.get<std::string>();
      if (f.find('/') != std::string::npos || f.find("..") != std::string::npos)
        throw std::runtime_error(index_path + ": shard name '" + f + "' must be a plain file name");
      names.insert(f);
    }
    files.assign(names.begin(), names.end());
    for (auto& f : files) f = dir + "/" + f;
  } else if (file_exists(single)) {
    files.push_back(single);
  } else {
    throw std::runtime_error(dir + ": no model.safetensors or model.safetensors.index.json");
  }
  for (const auto& f : files) {
    shards_.push_back(std::make_unique<SafetensorsFile>(f));
    for (const auto& [name, info] : shards_.back()->tensors()) {
      if (index_.count(name)) throw std::runtime_error(f + ": tensor '" + name + "' also appears in another shard");
      index_[name] = {shards_.back().get(), &info};
    }
  }
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end())
    throw std::runtime_error(dir_ + ": tensor '" + name + "' not found in the checkpoint (" +
                             std::to_string(index_.size()) + " tensors; is this a " + config_.model_type +
                             " checkpoint?)");
  return *it->second.second;
}

std::vector<const TensorInfo*> Checkpoint::all_tensors() const {
  std::vector<const TensorInfo*> out;
  for (const auto& [name, entry] : index_) out.push_back(entry.second);
  return out;
}

torch::Tensor Checkpoint::load(const std::string& name, const std::vector<int64_t>& expected_shape,
                               const LoadOptions& opts) const {
  const TensorInfo& ti = info(name);
  const SafetensorsFile& shard = *index_.at(name).first;
  if (ti.shape != expected_shape)
    throw std::runtime_error(shard.path() + ": tensor '" + name + "' has shape " + shape_str(ti.shape) + ", expected " +
                             shape_str(expected_shape) + " from config.json");
  // Copy out of the mapping into memory the tensor owns (the map is read-only and may be
  // unaligned), then drop the mapped pages so a full load never holds the file twice.
  auto raw = torch::empty(ti.shape, torch::TensorOptions().dtype(torch_dtype(ti.dtype)));
  std::memcpy(raw.data_ptr(), shard.file().data() + ti.offset, ti.nbytes);
  shard.file().release(ti.offset, ti.nbytes);
  bytes_read_ += ti.nbytes;
  return raw.to(opts.device, opts.dtype);
}

}  // namespace duet
