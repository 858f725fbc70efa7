// Dispatches piece construction to the model family's own file.
#include <stdexcept>

#include "common/models/gpt2.hpp"
#include "common/models/llama.hpp"
#include "common/models/notagen.hpp"
#include "common/pieces.hpp"

namespace duet {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  if (ck.config().family == Family::notagen) return notagen::load_embedding(ck, o);
  return ck.config().family == Family::gpt2 ? gpt2::load_embedding(ck, o) : llama::load_embedding(ck, o);
}
std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  if (ck.config().family == Family::notagen) return notagen::load_block(ck, layer, o);
  return ck.config().family == Family::gpt2 ? gpt2::load_block(ck, layer, o) : llama::load_block(ck, layer, o);
}
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  if (ck.config().family == Family::notagen) return notagen::load_final_norm(ck, o);
  return ck.config().family == Family::gpt2 ? gpt2::load_final_norm(ck, o) : llama::load_final_norm(ck, o);
}
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ck, const LoadOptions& o, const Embedding* tied_from) {
  if (ck.config().family == Family::notagen)
    throw std::invalid_argument(ck.dir() + " is a NotaGen model: its head is a character decoder that writes whole "
                                "patches (duet::notagen::CharDecoder), not a vocabulary projection; generate with "
                                "duet-edge generate (NotaGen path), not a token-level API");
  return ck.config().family == Family::gpt2 ? gpt2::load_lm_head(ck, o, tied_from) : llama::load_lm_head(ck, o, tied_from);
}

}  // namespace duet
