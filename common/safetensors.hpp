#pragma once
// The tensor index of a safetensors file (format: 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}}, then the raw bytes). No LibTorch here: the index
// is also what the model fingerprint is computed from.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.hpp"

namespace duet {

enum class StDtype { f32, f16, bf16 };
const char* st_dtype_name(StDtype d);  // "F32", "F16", "BF16"
size_t st_dtype_size(StDtype d);

struct TensorInfo {
  std::string name;
  StDtype dtype;
  std::vector<int64_t> shape;
  size_t offset = 0;  // from the start of the file
  size_t nbytes = 0;
  int64_t numel() const;
};

class SafetensorsFile {
 public:
  // Maps the file and validates the header: size bounds, JSON, dtypes, shapes and offsets.
  explicit SafetensorsFile(const std::string& path);

  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find(const std::string& name) const;
  const MappedFile& file() const { return *file_; }
  const std::string& path() const { return file_->path(); }

  static constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // the format's own limit

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorInfo> tensors_;
};

}  // namespace duet
