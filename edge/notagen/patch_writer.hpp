#pragma once
// One patch's characters from the character decoder, drawn with the piece's sampling options in
// one of two ways that give the same patch for a seed:
//   host    Sampler::next on each character's logits: a device->host sync per character (the
//           character filter and a repetition penalty need the host)
//   device  DeviceSampler: each character picked where the logits are and fed back to the
//           decoder as a device tensor; per patch one copy of uniforms up and one of ids back
// The device way runs the decoder over the whole patch (it learns where the EOS character fell
// only at the end); what follows the first EOS is dropped for padding, and the host's random
// stream moves on by the characters kept, as if the host had drawn them.
#include <cstdint>
#include <memory>
#include <vector>

#include "common/device_sampler.hpp"
#include "common/sampler.hpp"
#include "edge/notagen/piece_generator.hpp"

namespace duet::notagen {

class PatchWriter {
 public:
  // Throws std::invalid_argument for CharSampling::device with options only the host follows.
  PatchWriter(CharDecoder& chars, const PieceOptions& opts, c10::Device device);
  ~PatchWriter();

  // The next patch from the patch level's normed output h, starting with `forced` (fewer than
  // patch_size characters), padded past its EOS character unless full_patches. `ran` grows by
  // the character positions the decoder ran.
  Patch write(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran);
  bool on_device() const { return device_ != nullptr; }

 private:
  Patch write_on_host(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran);
  Patch write_on_device(const torch::Tensor& h, const std::vector<int32_t>& forced, int64_t& ran);

  CharDecoder& chars_;
  std::shared_ptr<CharFilter> filter_;
  bool full_patches_;
  int64_t patch_size_;
  Sampler sampler_;
  std::unique_ptr<DeviceSampler> device_;  // null: the host draws
};

}  // namespace duet::notagen
