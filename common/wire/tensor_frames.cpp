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
    case protocol::WireDtype::i8: return torch::kChar;
  }
  throw std::invalid_argument("unknown wire dtype");
}

namespace {

// int8 with a scale per row (protocol/dtype.hpp): [rows, hidden] int8, then [rows] fp32 scales.
zmq::message_t int8_frame(const torch::Tensor& x, protocol::TensorDesc& desc) {
  auto f = x.to(torch::kCPU, torch::kFloat).contiguous();  // [rows, hidden]
  auto scale = (f.abs().amax(1) / 127.0).contiguous();     // [rows]
  auto safe = torch::where(scale > 0, scale, torch::ones_like(scale));  // an all-zero row stays zero
  auto q = (f / safe.unsqueeze(1)).round().clamp(-127, 127).to(torch::kChar).contiguous();
  desc.dtype = protocol::WireDtype::i8;
  desc.shape.assign(f.sizes().begin(), f.sizes().end());
  const size_t qb = static_cast<size_t>(q.numel()), sb = static_cast<size_t>(scale.numel()) * sizeof(float);
  zmq::message_t frame(qb + sb);
  std::memcpy(frame.data(), q.data_ptr(), qb);
  std::memcpy(static_cast<char*>(frame.data()) + qb, scale.data_ptr(), sb);
  return frame;
}

torch::Tensor int8_tensor(const protocol::FrameView& frame, const protocol::TensorDesc& desc) {
  const auto rows = static_cast<int64_t>(desc.shape.at(0)), hidden = static_cast<int64_t>(desc.shape.at(1));
  const size_t qb = static_cast<size_t>(rows * hidden), sb = static_cast<size_t>(rows) * sizeof(float);
  if (qb + sb != frame.size)  // decode() already checked this; never trust a caller that skipped it
    throw std::invalid_argument("int8 tensor frame holds " + std::to_string(frame.size) + " bytes, its shape needs " +
                                std::to_string(qb + sb));
  auto q = torch::empty({rows, hidden}, torch::TensorOptions().dtype(torch::kChar));
  auto scale = torch::empty({rows, 1}, torch::TensorOptions().dtype(torch::kFloat));
  std::memcpy(q.data_ptr(), frame.data, qb);  // the frame may be unaligned for fp32
  std::memcpy(scale.data_ptr(), frame.data + qb, sb);
  return q.to(torch::kFloat) * scale;
}

}  // namespace

protocol::WireDtype to_wire_dtype(c10::ScalarType t) {
  if (t == torch::kFloat) return protocol::WireDtype::f32;
  if (t == torch::kHalf) return protocol::WireDtype::f16;
  if (t == torch::kBFloat16) return protocol::WireDtype::bf16;
  throw std::invalid_argument(std::string("dtype ") + c10::toString(t) +
                              " cannot travel on the wire as it is (fp32, fp16, bf16; int8 is a codec with scales)");
}

zmq::message_t tensor_to_frame(const torch::Tensor& x, protocol::WireDtype wire, protocol::TensorDesc& desc) {
  if (wire == protocol::WireDtype::i8) return int8_frame(x, desc);
  auto host = x.to(torch::kCPU, to_scalar_type(wire)).contiguous();
  desc.dtype = wire;
  desc.shape.assign(host.sizes().begin(), host.sizes().end());
  return protocol::tensor_frame_copy(host.data_ptr(), host.numel() * host.element_size());
}

torch::Tensor frame_to_tensor(const protocol::FrameView& frame, const protocol::TensorDesc& desc, c10::Device device,
                              c10::ScalarType dtype) {
  if (desc.dtype == protocol::WireDtype::i8) return int8_tensor(frame, desc).to(device, dtype);
  std::vector<int64_t> shape(desc.shape.begin(), desc.shape.end());
  auto t = torch::empty(shape, torch::TensorOptions().dtype(to_scalar_type(desc.dtype)));
  const size_t need = static_cast<size_t>(t.numel()) * t.element_size();
  if (need != frame.size)  // decode() already checked this; never trust a caller that skipped it
    throw std::invalid_argument("tensor frame holds " + std::to_string(frame.size) + " bytes, its shape needs " +
                                std::to_string(need));
  std::memcpy(t.data_ptr(), frame.data, need);  // the frame may be unaligned for the dtype
  return t.to(device, dtype);
}

torch::Tensor wire_round_trip(const torch::Tensor& x, protocol::WireDtype wire) {
  protocol::TensorDesc desc;
  auto frame = tensor_to_frame(x, wire, desc);
  return frame_to_tensor(protocol::view_of(frame), desc, x.device(), x.scalar_type());
}

std::string model_fingerprint(const Checkpoint& ckpt) {
  std::vector<protocol::TensorIndexEntry> entries;
  for (const auto* t : ckpt.all_tensors())
    entries.push_back({t->name, st_dtype_name(t->dtype), std::vector<uint64_t>(t->shape.begin(), t->shape.end())});
  return protocol::fingerprint_model(ckpt.config_text(), std::move(entries));
}

}  // namespace duet
