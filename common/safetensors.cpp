#include "common/safetensors.hpp"

#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace duet {

const char* st_dtype_name(StDtype d) {
  switch (d) {
    case StDtype::f32: return "F32";
    case StDtype::f16: return "F16";
    case StDtype::bf16: return "BF16";
  }
  return "?";
}

size_t st_dtype_size(StDtype d) { return d == StDtype::f32 ? 4 : 2; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

SafetensorsFile::SafetensorsFile(const std::string& path)
    : file_(std::make_shared<MappedFile>(path)) {
  const size_t size = file_->size();
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error("bad safetensors file " + path + ": " + what);
  };
  if (size < 8) throw fail("file is " + std::to_string(size) + " bytes, shorter than its 8-byte header length");
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | file_->data()[i];
  if (header_len > kMaxHeaderBytes)
    throw fail("header length " + std::to_string(header_len) + " exceeds the format's limit of " +
               std::to_string(kMaxHeaderBytes) + " bytes");
  if (header_len > size - 8)
    throw fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(size) + " bytes): truncated?");
  const size_t data_start = 8 + header_len;
  const size_t data_len = size - data_start;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(file_->data() + 8, file_->data() + data_start);
  } catch (const std::exception& e) {
    throw fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  for (auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    auto bad = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!entry.is_object()) throw bad("entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string()) throw bad("missing dtype");
    const std::string dt = entry["dtype"];
    TensorInfo info;
    info.name = name;
    if (dt == "F32") info.dtype = StDtype::f32;
    else if (dt == "F16") info.dtype = StDtype::f16;
    else if (dt == "BF16") info.dtype = StDtype::bf16;
    else throw bad("unsupported dtype " + dt + " (supported: F32, F16, BF16)");
    if (!entry.contains("shape") || !entry["shape"].is_array()) throw bad("missing shape");
    uint64_t numel = 1;
    for (auto& s : entry["shape"]) {
      if (!s.is_number_unsigned()) throw bad("shape holds a non-integer or negative dimension");
      uint64_t d = s.get<uint64_t>();
      if (d != 0 && numel > std::numeric_limits<uint64_t>::max() / 16 / d) throw bad("shape overflows");
      numel *= d;
      info.shape.push_back(static_cast<int64_t>(d));
    }
    auto& offs = entry["data_offsets"];
    if (!offs.is_array() || offs.size() != 2 || !offs[0].is_number_unsigned() || !offs[1].is_number_unsigned())
      throw bad("data_offsets must be two non-negative integers");
    uint64_t b = offs[0], e = offs[1];
    if (b > e || e > data_len)
      throw bad("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) +
                ") fall outside the data section of " + std::to_string(data_len) + " bytes");
    const uint64_t want = numel * st_dtype_size(info.dtype);
    if (e - b != want)
      throw bad("holds " + std::to_string(e - b) + " bytes but its shape and dtype need " + std::to_string(want));
    info.offset = data_start + b;
    info.nbytes = e - b;
    tensors_.emplace(name, std::move(info));
  }
}

}  // namespace duet
