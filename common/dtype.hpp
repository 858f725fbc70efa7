#pragma once
// Names of compute dtypes and devices, as users write them in flags and config files.
#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <string>

namespace duet {

c10::ScalarType parse_dtype(const std::string& name);  // fp32|float32, fp16|float16, bf16|bfloat16
std::string dtype_name(c10::ScalarType t);              // "fp32", "fp16", "bf16"
c10::Device parse_device(const std::string& name);      // "cpu", "cuda", "cuda:1"; checks it exists

}  // namespace duet
