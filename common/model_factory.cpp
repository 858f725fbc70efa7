// Dispatches piece construction to the model family's own file.
#include <stdexcept>

#include "common/models/gemma.hpp"
#include "common/models/gpt2.hpp"
#include "common/models/llama.hpp"
#include "common/models/notagen.hpp"
#include "common/pieces.hpp"

namespace duet {

std::unique_ptr<Embedding> load_embedding(const Checkpoint& ck, const LoadOptions& o) {
  switch (ck.config().family) {
    case Family::gemma: return gemma::load_embedding(ck, o);
    case Family::gpt2: return gpt2::load_embedding(ck, o);
    case Family::notagen: return notagen::load_embedding(ck, o);
    case Family::llama: break;
  }
  return llama::load_embedding(ck, o);
}
std::unique_ptr<Block> load_block(const Checkpoint& ck, int64_t layer, const LoadOptions& o) {
  switch (ck.config().family) {
    case Family::gemma: return gemma::load_block(ck, layer, o);
    case Family::gpt2: return gpt2::load_block(ck, layer, o);
    case Family::notagen: return notagen::load_block(ck, layer, o);
    case Family::llama: break;
  }
  return llama::load_block(ck, layer, o);
}
std::unique_ptr<FinalNorm> load_final_norm(const Checkpoint& ck, const LoadOptions& o) {
  switch (ck.config().family) {
    case Family::gemma: return gemma::load_final_norm(ck, o);
    case Family::gpt2: return gpt2::load_final_norm(ck, o);
    case Family::notagen: return notagen::load_final_norm(ck, o);
    case Family::llama: break;
  }
  return llama::load_final_norm(ck, o);
}
std::unique_ptr<LmHead> load_lm_head(const Checkpoint& ck, const LoadOptions& o, const Embedding* tied_from) {
  switch (ck.config().family) {
    case Family::gemma: return gemma::load_lm_head(ck, o, tied_from);
    case Family::gpt2: return gpt2::load_lm_head(ck, o, tied_from);
    case Family::notagen:
      throw std::invalid_argument(ck.dir() + " is a NotaGen model: its head is a character decoder that writes whole "
                                  "patches (duet::notagen::CharDecoder), not a vocabulary projection; write its "
                                  "pieces with duet-edge generate (a patch per round trip), not a token-level API");
    case Family::llama: break;
  }
  return llama::load_lm_head(ck, o, tied_from);
}

}  // namespace duet
