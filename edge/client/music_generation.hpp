#pragma once
// Tunes from a music model (a model folder with duet.json) through an EdgeClient: options checked
// (edge/music/music_options.hpp), an ABC header with title and tempo, the bar constraint as the
// generation's logits processor (on unless asked otherwise), and the warnings a musician should see.
// GenerationJob (edge/generation/) makes one per tune request and steers its run with it; the
// CLI turns the job's outcome into the tune it prints and writes (tune_of).
//
//   duet::edge::TuneRequest req;               // empty options: the model's defaults
//   req.options.style = "oneills-jig";
//   GenerationRequest r; r.tune = req;
//   GenerationJob job(client, client.default_options(), r, &*spec);   // throws on invalid options
//   auto out = job.run(runner, sink);
//   auto tune = job.tune()->tune_of(1, job.plan().sampling.seed, out, job.plan().max_new_tokens,
//                                   job.plan().max_positions);
//   std::cout << tune.abc();
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edge/client/edge_client.hpp"
#include "edge/generation/generation_sink.hpp"
#include "edge/generation/tune_request.hpp"
#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"

namespace duet::edge {

struct Tune {
  int index = 1;           // X:
  uint64_t seed = 0;
  std::string header;      // X:, T:, Q: and a comment with the seed
  std::string prompt;      // the model's prompt: S:, M:, L:, K: (+ the opening)
  std::string text;        // what the model wrote
  std::string title;
  int64_t relaxed_steps = 0;          // steps where the constraint had to lift its mask
  bool ended_by_budget = false;       // the ending push ended it at a bar line as the budget ran out
  std::vector<std::string> warnings;  // this tune's (the token budget or context ended it, ...)
  std::string abc() const;            // header + prompt + text, ending with a newline
};

// What steer() installed: the constraint it follows (null when off) and whether the ending push
// ended the tune as the budget ran out (read after the generation).
struct TuneSteering {
  std::shared_ptr<music::BarConstraint> constraint;
  std::shared_ptr<bool> ended_by_budget;
};

class TuneMaker {
 public:
  TuneMaker(EdgeClient& client, const music::MusicModelSpec& spec, const TuneRequest& req);
  const music::CheckedMusicOptions& options() const { return opts_; }
  const std::vector<std::string>& warnings() const { return opts_.warnings; }  // about the options
  const std::string& prompt_text() const { return prompt_; }
  // The tune (X:index) a generation of prompt_text() with this seed wrote: header, title, text
  // (the ids decoded whole) and the warnings a musician should see, given the run's budget and
  // position limit.
  Tune tune_of(int index, uint64_t seed, const GenerationOutcome& out, int64_t max_new_tokens,
               int64_t max_positions) const;
  std::string header(int index, uint64_t seed) const;
  // Installs the request's bar constraint and ending push as g's logits processor, for a
  // generation of prompt_text() (prompt_len ids) with g's budget; nothing when the constraint is off.
  TuneSteering steer(GenerationOptions& g, size_t prompt_len) const;

 private:
  EdgeClient& client_;
  const music::MusicModelSpec& spec_;
  TuneRequest req_;
  music::CheckedMusicOptions opts_;
  std::string prompt_;
  std::vector<std::string> token_texts_;
};

// The constraint as a generation hook: it follows the tokens after prompt_len and masks the rest.
// With `ending`, also the ending push (edge/music/tune_ending.hpp) on the end_ids; ended_by_budget
// (optional) is set when the push ended the tune because the budget was running out.
LogitsProcessor bar_constraint_processor(std::shared_ptr<music::BarConstraint> constraint, size_t prompt_len,
                                         std::optional<music::TuneEndingOptions> ending = std::nullopt,
                                         std::vector<int32_t> end_ids = {},
                                         std::shared_ptr<bool> ended_by_budget = nullptr);

}  // namespace duet::edge
