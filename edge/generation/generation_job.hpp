#pragma once
// One generation, the same for every front end (duet-edge serve's OpenAI routes and its music
// page, duet-edge generate):
//   GenerationJob job(client, base, request, spec);   // request -> plan: defaults applied once
//   job.run(runner, sink);                             // plan -> tokens, text, one stop reason
// A tune (request.tune) gets its prompt from its options and the bar constraint (with the ending
// push) as the logits processor, as duet-edge generate does. A NotaGen model's piece
// (request.piece, on a PieceClient) is the same job on a PieceRunner: a patch per round trip, its
// prompt from the piece's options, the budget in characters, the text without the stream markers,
// the same outcome and stop reason. No LibTorch in this header.
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
class PieceClient;
class PieceMaker;
class PieceRunner;

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
  // A NotaGen model's piece: request.piece (no prompt ids, tune or stop strings: the piece's
  // options write the prompt, checked against the model's duet.json by PieceMaker, which throws
  // std::invalid_argument naming what does not fit). base: client.default_options() (the budget
  // in characters, sampling, the patch context), the request's fields on top; the piece's context
  // lowers the patch context. The plan's prompt holds the prompt's characters (NotaGen's tokens).
  GenerationJob(const PieceClient& client, const GenerationOptions& base, const GenerationRequest& request);

  const GenerationPlan& plan() const { return plan_; }
  const TuneMaker* tune() const { return tune_.get(); }     // null unless a tune
  const PieceMaker* piece() const { return piece_.get(); }  // null unless a NotaGen piece
  // The same job with another seed (duet-edge generate --count: seeds SEED, SEED+1, ...).
  GenerationJob with_seed(uint64_t seed) const;

  // Runs the plan on runner, text to sink as it comes, then sink.finish(outcome). A sink that
  // returns false ends it at once (StopReason::cancelled). Throws what the runner throws, and
  // std::logic_error for a runner of the other kind (a piece runs on a PieceRunner, the rest on a
  // TokenRunner).
  GenerationOutcome run(TokenRunner& runner, GenerationSink& sink) const;
  GenerationOutcome run(PieceRunner& runner, GenerationSink& sink) const;

 private:
  EdgeClient* client_ = nullptr;  // null for a piece
  std::shared_ptr<const GenerationOptions> base_;
  std::shared_ptr<const TuneMaker> tune_;
  std::shared_ptr<const PieceMaker> piece_;
  GenerationPlan plan_;
};

}  // namespace duet::edge
