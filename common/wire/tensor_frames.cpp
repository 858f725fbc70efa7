#include "common/wire/tensor_frames.hpp"

#include <torch/torch.h>

#include <cstring>
#include <stdexcept>

#include "protocol/fingerprint.hpp"

namespace duet {

c10::ScalarType to_scalar_type(protocol::WireDtype d) {
  switch (d) {
    case protocol::WireDtype::f32: return torch::kFloat;
    case protocol::WireDtype::f16: return torch::kHalf;
    case protocol::WireDtype::bf16: return torch::kBFloat16;
  }
  throw std::invalid_argument("unknown wire dtype");
}

protocol::WireDtype to_wire_dtype(c10::ScalarType t) {
  if (t == torch::kFloat) return protocol::WireDtype::f32;
  if (t == torch::kHalf) return protocol::WireDtype::f16;
  if (t == torch::kBFloat16) return protocol::WireDtype::bf16;
  throw std::invalid_argument(std::string("dtype ") + c10::toString(t) + " cannot travel on the wire (fp32, fp16, bf16)");
}

zmq::message_t tensor_to_frame(const torch::Tensor& x, protocol::WireDtype wire, protocol::TensorDesc& desc) {
  auto host = x.to(torch::kCPU, to_scalar_type(wire)).contiguous();
  desc.dtype = wire;
  desc.shape.assign(host.sizes().begin(), host.sizes().end());
  return protocol::tensor_frame_copy(host.data_ptr(), host.numel() * host.element_size());
}

torch::Tensor frame_to_tensor(const protocol::FrameView& frame, const protocol::TensorDesc& desc, c10::Device device,
                              c10::ScalarType dtype) {
  std::vector<int64_t> shape(desc.shape.begin(), desc.shape.end());
  auto t = torch::empty(shape, torch::TensorOptions().dtype(to_scalar_type(desc.dtype)));
  const size_t need = static_cast<size_t>(t.numel()) * t.element_size();
  if (need != frame.size)  // decode() already checked this; never trust a caller that skipped it
    throw std::invalid_argument("tensor frame holds " + std::to_string(frame.size) + " bytes, its shape needs " +
                                std::to_string(need));
  std::memcpy(t.data_ptr(), frame.data, need);  // the frame may be unaligned for the dtype
  return t.to(device, dtype);
}

std::string model_fingerprint(const Checkpoint& ckpt) {
  std::vector<protocol::TensorIndexEntry> entries;
  for (const auto* t : ckpt.all_tensors())
    entries.push_back({t->name, st_dtype_name(t->dtype), std::vector<uint64_t>(t->shape.begin(), t->shape.end())});
  return protocol::fingerprint_model(ckpt.config_text(), std::move(entries));
}

}  // namespace duet
