#include "edge/notagen/piece_generator.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "edge/notagen/patch_writer.hpp"

namespace duet::notagen {

namespace {

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

torch::Tensor patch_ids(const std::vector<Patch>& patches, c10::Device device) {
  std::vector<int64_t> flat;
  for (const auto& p : patches) flat.insert(flat.end(), p.begin(), p.end());
  const auto n = static_cast<int64_t>(patches.size());
  return torch::tensor(flat, torch::TensorOptions().dtype(torch::kLong)).view({n, -1}).to(device);
}

int64_t dtype_bytes(const Checkpoint& ck, const std::string& name, c10::ScalarType t) {
  int64_t n = 1;
  for (auto d : ck.info(name).shape) n *= d;
  return n * static_cast<int64_t>(c10::elementSize(t));
}

}  // namespace

PieceGenerator::PieceGenerator(const Checkpoint& ck, const LoadOptions& o)
    : shape_(Shape::of(ck)),
      device_(o.device),
      context_(ck.config().max_positions),
      embed_(notagen::load_embedding(ck, o)),
      norm_(notagen::load_final_norm(ck, o)),
      chars_(std::make_unique<CharDecoder>(ck, o)) {
  if (ck.config().family != Family::notagen) throw std::invalid_argument(ck.dir() + " is not a NotaGen model");
  for (const char* n : {"patch_level_decoder.patch_embedding.weight", "patch_level_decoder.patch_embedding.bias",
                        "patch_level_decoder.base.wpe.weight", "patch_level_decoder.base.ln_f.weight",
                        "patch_level_decoder.base.ln_f.bias"})
    embed_bytes_ += dtype_bytes(ck, n, o.dtype);
}

PieceGenerator::~PieceGenerator() = default;

int64_t PieceGenerator::weight_bytes() const { return embed_bytes_ + chars_->weight_bytes(); }

torch::Tensor PieceGenerator::patch_hidden(Backbone& backbone, const std::vector<Patch>& patches, bool last_only) {
  torch::NoGradGuard no_grad;
  backbone.reset();
  auto h = backbone.forward(embed_->forward(patch_ids(patches, device_), 0), 0, last_only);
  return norm_->forward(h.to(device_));
}

PieceResult PieceGenerator::generate(Backbone& backbone, const std::string& prompt_text, const PieceOptions& o,
                                     const TextCallback& on_text) {
  torch::NoGradGuard no_grad;
  const int64_t P = shape_.patch_size;
  const int64_t ctx = o.context > 0 ? std::min(o.context, context_) : context_;
  if (ctx < 4) throw std::invalid_argument("notagen: a patch context of " + std::to_string(ctx) + " is too small");
  const int64_t budget = ctx * 3 / 4;  // what a re-encoded piece may take: room left to go on
  PieceResult res;

  EncodedPrompt enc = encode_prompt(split_piece(prompt_text), P);
  if (static_cast<int64_t>(enc.patches.size()) >= ctx) {  // a prompt past the context: its tail
    enc = reencode_tail(prompt_text, P, budget);
    ++res.cuts;
  }
  bool in_body = !split_piece(prompt_text).body.empty();
  std::string piece = prompt_text;  // prompt + everything written: what a cut re-encodes
  std::vector<Patch> pending = std::move(enc.patches);
  std::vector<int32_t> prefix = std::move(enc.prefix);
  int64_t start = 0;
  backbone.reset();

  if (o.filter && shape_.stream_markers)
    throw std::invalid_argument("notagen: a character filter cannot follow a model with stream markers");
  PatchWriter writer(*chars_, o, device_);
  res.sampled_on_device = writer.on_device();

  while (true) {
    if (o.max_patches > 0 && static_cast<int64_t>(res.patches.size()) >= o.max_patches) {
      res.stop_reason = "max_patches";
      break;
    }
    PatchStep st;
    st.positions = static_cast<int64_t>(pending.size());
    auto t0 = std::chrono::steady_clock::now();
    auto hidden = embed_->forward(patch_ids(pending, device_), start);  // [n, H]
    st.edge_ms = ms_since(t0);
    auto t1 = std::chrono::steady_clock::now();
    auto out = backbone.forward(hidden, start, /*last_only=*/true);  // [1, H]
    st.backbone_ms = ms_since(t1);
    st.cloud_ms = backbone.last_compute_ms();
    auto t2 = std::chrono::steady_clock::now();
    auto h = norm_->forward(out.to(device_));
    start += st.positions;

    Patch patch = writer.write(h, prefix, st.chars);
    size_t known = prefix.size();  // characters of the patch already in the piece's text
    if (shape_.stream_markers && !in_body && prefix.empty() && patch_text(patch).rfind("[r:", 0) == 0) {
      // NotaGen: the first body line is numbered from 0; redraw it starting "[r:0/"
      in_body = true;
      patch = writer.write(h, {'[', 'r', ':', '0', '/'}, st.chars);
      known = 0;
    }
    st.edge_ms += ms_since(t2);
    res.steps.push_back(st);
    res.patches.push_back(patch);
    if (is_eos_patch(patch)) {
      res.stop_reason = "eos";
      break;
    }
    std::string t = patch_text(patch, known);
    const auto room = static_cast<size_t>(std::max<int64_t>(0, o.max_chars - static_cast<int64_t>(res.text.size())));
    const bool full = t.size() >= room;
    if (full) t.resize(room);
    res.text += t;
    piece += t;
    if (on_text && !t.empty()) on_text(t);
    if (full) {
      res.stop_reason = "max_chars";
      break;
    }
    pending.assign(1, clean_patch(patch));
    prefix.clear();
    if (start + 1 >= ctx) {  // the context is full (NotaGen's test): cut, re-encode, start over
      EncodedPrompt e = reencode_tail(piece, P, budget);
      pending = std::move(e.patches);
      prefix = std::move(e.prefix);
      start = 0;
      backbone.reset();
      ++res.cuts;
    }
  }
  return res;
}

}  // namespace duet::notagen
