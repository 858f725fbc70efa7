#pragma once
// NotaGen generation on the edge: the patch embedding, the patch level's final norm and the
// character decoder run here; the patch level's blocks are a Backbone (LocalBackbone in process,
// RemoteBackbone on a duet-cloud daemon: one round trip per patch of 16 characters).
//
// Per patch: embed the new patch -> backbone (its KV cache holds the piece) -> final norm -> the
// character decoder writes the next patch's characters, each drawn by the sampler (on the host or
// on the device, patch_writer.hpp) -> the patch, cleaned past its EOS character, is the next
// input. The piece ends at the EOS patch.
// NotaGen's rules kept: prompt patches as patches.hpp encodes them (an unfinished last bar's
// characters start the next patch); for models with stream markers, the first body patch
// starting "[r:" is redrawn starting "[r:0/"; when the patch context is full, the piece is cut
// and re-encoded (metadata + the last half of the body lines) into a fresh backbone sequence.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/backbone.hpp"
#include "common/models/notagen.hpp"
#include "common/sampling_options.hpp"
#include "edge/notagen/patches.hpp"

namespace duet::notagen {

// Sees every character step's logits before the sampler (fp32 [vocab], on the edge device) and may
// set forbidden characters to -inf; told each character drawn. The folk CLI uses it for the bar
// constraint. Only for models without stream markers (the "[r:0/" redraw would replay characters).
class CharFilter {
 public:
  virtual ~CharFilter() = default;
  virtual void mask(torch::Tensor& logits, const Patch& so_far) = 0;  // so_far: this patch's characters
  virtual void advance(int32_t c) = 0;
};

// Where each character is drawn (patch_writer.hpp). automatic: on the device when the character
// decoder runs on a CUDA GPU and neither a filter nor a repetition penalty needs the host (there
// a patch costs one sync instead of one per character; on the CPU the host's loop is the
// cheaper); host and device force one (device is refused for options only the host follows).
// A seed gives the same piece either way.
enum class CharSampling { automatic, host, device };

struct PieceOptions {
  SamplingOptions sampling;     // per character; NotaGen: top_k 9, top_p 0.9, temperature 1.2, temperature_last
  int64_t max_chars = 102400;   // characters written after the prompt, at most (NotaGen: 102400)
  int64_t max_patches = 0;      // patches generated, at most (0: no limit)
  // Patch context to use (0: the model's): the long-piece rule cuts there. The daemon's
  // per-session limit lowers it further.
  int64_t context = 0;
  bool full_patches = false;    // draw all characters of every patch, as NotaGen's loop does
                                // (default: stop a patch at its EOS character; the rest is padding)
  std::shared_ptr<CharFilter> filter;  // null: the sampler sees the model's logits as they are
  CharSampling char_sampling = CharSampling::automatic;
};

struct PatchStep {
  int64_t positions = 0;  // patches sent (the prompt, or the re-encoded piece, then 1)
  int64_t chars = 0;      // characters the character decoder ran
  double edge_ms = 0;     // patch embedding + norm + character decoder + sampling
  double backbone_ms = 0; // the backbone call: in-process compute or the network round trip
  double cloud_ms = -1;   // compute time the backbone reported
};

struct PieceResult {
  std::string text;                 // characters written after the prompt (stream markers kept)
  std::vector<Patch> patches;       // each generated patch as drawn (before cleaning)
  std::string stop_reason;          // "eos", "max_chars", "max_patches"
  int cuts = 0;                     // times the long-piece rule re-encoded the piece
  bool sampled_on_device = false;   // the characters were drawn by the device sampler
  std::vector<PatchStep> steps;
};

// Sees each newly written piece of text (one patch's characters); may throw to stop.
using TextCallback = std::function<void(const std::string&)>;

class PieceGenerator {
 public:
  PieceGenerator(const Checkpoint& ckpt, const LoadOptions& opts);
  ~PieceGenerator();

  // Generates after prompt_text (metadata lines, optionally a body to continue). Throws
  // std::invalid_argument for a prompt with non-ASCII characters or one longer than the context.
  PieceResult generate(Backbone& backbone, const std::string& prompt_text, const PieceOptions& opts,
                       const TextCallback& on_text = nullptr);

  // The patch level's normed output for the last of `patches` (a fresh sequence): tests.
  torch::Tensor patch_hidden(Backbone& backbone, const std::vector<Patch>& patches, bool last_only = true);
  CharDecoder& char_decoder() { return *chars_; }
  const Shape& shape() const { return shape_; }
  int64_t context() const { return context_; }
  int64_t weight_bytes() const;  // the edge's: patch embedding, norm, character decoder

 private:
  Shape shape_;
  c10::Device device_;
  int64_t context_;
  std::unique_ptr<Embedding> embed_;
  std::unique_ptr<FinalNorm> norm_;
  std::unique_ptr<CharDecoder> chars_;
  int64_t embed_bytes_ = 0;
};

}  // namespace duet::notagen
