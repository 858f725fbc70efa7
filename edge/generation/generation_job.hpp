#pragma once
// One generation, the same for every front end (duet-edge serve's OpenAI routes and its music
// page, duet-edge generate):
//   GenerationJob job(client, base, request, spec);   // request -> plan: defaults applied once
//   job.run(runner, sink);                             // plan -> tokens, text, one stop reason
// A tune (request.tune) gets its prompt from its options and the bar constraint (with the ending
// push) as the logits processor, as duet-edge generate does. No LibTorch in this header.
#include <cstdint>
#include <memory>

#include "edge/generation/generation_request.hpp"
#include "edge/generation/generation_sink.hpp"

namespace duet {
struct GenerationOptions;
namespace music {
struct MusicModelSpec;
}
}  // namespace duet

namespace duet::edge {

class EdgeClient;
class TuneMaker;
class TokenRunner;

class GenerationJob {
 public:
  // base: the front end's options (config < duet.json < flags: EdgeClient::default_options, the
  // budget, sampling, EOS ids and position limit the request starts from; its speculation kept).
  // A tune needs spec (the model's duet.json); its options are checked there: throws
  // music::AbcFieldError naming the option, std::invalid_argument for a tune asked of a model that
  // is not a music model, or a tune or stop strings asked of a model without a tokenizer (a
  // prompt of ids runs without one: no text then, only tokens).
  GenerationJob(EdgeClient& client, const GenerationOptions& base, const GenerationRequest& request,
                const music::MusicModelSpec* spec = nullptr);

  const GenerationPlan& plan() const { return plan_; }
  const TuneMaker* tune() const { return tune_.get(); }  // null unless a tune
  // The same job with another seed (duet-edge generate --count: seeds SEED, SEED+1, ...).
  GenerationJob with_seed(uint64_t seed) const;

  // Runs the plan on runner, text to sink as it comes, then sink.finish(outcome). A sink that
  // returns false ends it at once (StopReason::cancelled). Throws what the runner throws.
  GenerationOutcome run(TokenRunner& runner, GenerationSink& sink) const;

 private:
  EdgeClient* client_;
  std::shared_ptr<const GenerationOptions> base_;
  std::shared_ptr<const TuneMaker> tune_;
  GenerationPlan plan_;
};

}  // namespace duet::edge
