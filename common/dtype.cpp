#include "common/dtype.hpp"

#include <torch/cuda.h>

#include <stdexcept>

namespace duet {

c10::ScalarType parse_dtype(const std::string& name) {
  if (name == "fp32" || name == "float32" || name == "f32") return c10::ScalarType::Float;
  if (name == "fp16" || name == "float16" || name == "f16") return c10::ScalarType::Half;
  if (name == "bf16" || name == "bfloat16") return c10::ScalarType::BFloat16;
  throw std::invalid_argument("unknown dtype '" + name + "' (use fp32, fp16 or bf16)");
}

std::string dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "fp32";
    case c10::ScalarType::Half: return "fp16";
    case c10::ScalarType::BFloat16: return "bf16";
    default: return c10::toString(t);
  }
}

c10::Device parse_device(const std::string& name) {
  c10::Device d(c10::kCPU);
  try {
    d = c10::Device(name);
  } catch (const std::exception&) {
    throw std::invalid_argument("unknown device '" + name + "' (use cpu, cuda or cuda:N)");
  }
  if (d.is_cuda()) {
    const int64_t n = static_cast<int64_t>(torch::cuda::device_count());
    const int64_t idx = d.has_index() ? d.index() : 0;
    if (idx >= n)
      throw std::invalid_argument("device '" + name + "' does not exist: this process sees " + std::to_string(n) +
                                  " CUDA device(s)");
  } else if (!d.is_cpu()) {
    throw std::invalid_argument("device '" + name + "' is not supported (use cpu or cuda:N)");
  }
  return d;
}

}  // namespace duet
