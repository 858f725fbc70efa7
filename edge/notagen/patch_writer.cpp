#include "edge/notagen/patch_writer.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>

namespace duet::notagen {

PatchWriter::PatchWriter(CharDecoder& chars, const PieceOptions& o, c10::Device device)
    : chars_(chars),
      filter_(o.filter),
      full_patches_(o.full_patches),
      patch_size_(chars.shape().patch_size),
      sampler_(o.sampling) {
  const bool host_only = o.filter || !DeviceSampler::follows(o.sampling);
  if (o.char_sampling == CharSampling::device && host_only)
    throw std::invalid_argument(std::string("notagen: characters cannot be drawn on the device with ") +
                                (o.filter ? "a character filter" : "a repetition penalty") +
                                ": leave the character sampling automatic or on the host");
  const bool on_device = o.char_sampling == CharSampling::device ||
                         (o.char_sampling == CharSampling::automatic && !host_only && device.is_cuda());
  if (on_device) device_ = std::make_unique<DeviceSampler>(sampler_, device);
}

PatchWriter::~PatchWriter() = default;

Patch PatchWriter::write(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran) {
  return device_ ? write_on_device(h, forced, ran) : write_on_host(h, forced, ran);
}

// stops at the first EOS character unless full_patches (what follows it is padding either way)
Patch PatchWriter::write_on_host(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran) {
  Patch p(forced.begin(), forced.end());
  auto logits = chars_.begin(h, forced);
  ran += static_cast<int64_t>(forced.size()) + 1;
  while (true) {
    if (filter_) filter_->mask(logits, p);
    const int32_t c = sampler_.next(logits, p);
    if (filter_) filter_->advance(c);
    p.push_back(c);
    if (static_cast<int64_t>(p.size()) == patch_size_ || (c == kEos && !full_patches_)) break;
    logits = chars_.next(c);
    ++ran;
  }
  p.resize(static_cast<size_t>(patch_size_), kPad);
  return p;
}

Patch PatchWriter::write_on_device(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran) {
  const int64_t n = patch_size_ - static_cast<int64_t>(forced.size());  // characters to write
  device_->start(n);
  auto logits = chars_.begin(h, forced);
  for (int64_t i = 0; i < n; ++i) {
    const auto c = device_->pick(logits);  // [] int64 on the device
    if (i + 1 < n) logits = chars_.next(c);
  }
  ran += patch_size_;  // begin's forced.size() + 1 positions, then n - 1: the whole patch
  const std::vector<int32_t> ids = device_->finish();
  auto used = ids.end();  // the characters the host's loop would have drawn
  if (!full_patches_) {
    const auto eos = std::find(ids.begin(), ids.end(), kEos);
    if (eos != ids.end()) used = eos + 1;
  }
  device_->keep(used - ids.begin());
  Patch p(forced.begin(), forced.end());
  p.insert(p.end(), ids.begin(), used);
  p.resize(static_cast<size_t>(patch_size_), kPad);
  return p;
}

}  // namespace duet::notagen
