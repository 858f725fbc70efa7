#pragma once
// Where LibTorch meets the wire: tensors to and from raw tensor frames in the negotiated wire
// dtype, and the model fingerprint of a checkpoint. Kept out of common/ proper (which must not
// depend on protocol/) and out of protocol/ (which must not depend on LibTorch).
#include <torch/types.h>

#include <string>
#include <zmq.hpp>

#include "common/checkpoint.hpp"
#include "protocol/dtype.hpp"
#include "protocol/messages.hpp"

namespace duet {

c10::ScalarType to_scalar_type(protocol::WireDtype d);
protocol::WireDtype to_wire_dtype(c10::ScalarType t);  // throws for dtypes the wire does not carry

// [rows, hidden] on any device -> one frame of contiguous little-endian bytes in wire dtype
// (int8: the values, then one fp32 scale per row; protocol/dtype.hpp).
zmq::message_t tensor_to_frame(const torch::Tensor& x, protocol::WireDtype wire, protocol::TensorDesc& desc);
// A validated frame -> tensor on `device` in `dtype` (the frame may be freed afterwards).
torch::Tensor frame_to_tensor(const protocol::FrameView& frame, const protocol::TensorDesc& desc,
                              c10::Device device, c10::ScalarType dtype);

// x through the codec and back (what the peer sees), on x's device in x's dtype.
torch::Tensor wire_round_trip(const torch::Tensor& x, protocol::WireDtype wire);

// SHA-256 over config.json and the tensor index (protocol/fingerprint.hpp says exactly what).
std::string model_fingerprint(const Checkpoint& ckpt);

}  // namespace duet
