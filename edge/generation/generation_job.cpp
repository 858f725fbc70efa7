#include "edge/generation/generation_job.hpp"

#include <chrono>
#include <optional>
#include <stdexcept>

#include "edge/client/music_generation.hpp"
#include "edge/generation/text_stream.hpp"
#include "edge/generation/token_runner.hpp"

namespace duet::edge {

namespace {

double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

GenerationDefaults defaults_of(const GenerationOptions& g) {
  return {g.max_new_tokens, g.sampling, g.stop_ids, g.max_positions};
}

}  // namespace

GenerationJob::GenerationJob(EdgeClient& client, const GenerationOptions& base, const GenerationRequest& request,
                             const music::MusicModelSpec* spec)
    : client_(&client), base_(std::make_shared<const GenerationOptions>(base)) {
  if (!client.tokenizer() && (request.tune || !request.stop_strings.empty()))
    throw std::invalid_argument(client.config().model_path + " has no tokenizer.json: " +
                                (request.tune ? "a tune is written as text" : "stop strings are matched in text") +
                                ", which needs the model's tokenizer (a prompt of ids alone runs without one)");
  GenerationRequest r = request;
  if (r.tune) {
    if (!spec)
      throw std::invalid_argument(client.config().model_path +
                                  " is not a music model (no duet.json): it cannot write a tune from options");
    tune_ = std::make_shared<const TuneMaker>(client, *spec, *r.tune);
    if (r.prompt.empty()) r.prompt = client.tokenizer()->encode(tune_->prompt_text(), /*add_special_tokens=*/true);
  }
  plan_ = resolve(defaults_of(base), r);
}

GenerationJob GenerationJob::with_seed(uint64_t seed) const {
  GenerationJob j = *this;
  j.plan_.sampling.seed = seed;
  return j;
}

GenerationOutcome GenerationJob::run(TokenRunner& runner, GenerationSink& sink) const {
  GenerationOptions g = *base_;
  g.max_new_tokens = plan_.max_new_tokens;
  g.sampling = plan_.sampling;
  g.stop_ids = plan_.stop_ids;
  g.max_positions = plan_.max_positions;
  TuneSteering steering;
  if (tune_) steering = tune_->steer(g, plan_.prompt.size());

  std::optional<TextStream> text;  // none without a tokenizer: tokens only
  if (client_->tokenizer()) text.emplace(*client_->tokenizer(), plan_.stop_strings);
  const auto t0 = std::chrono::steady_clock::now();
  auto t_first = t0;
  size_t n = 0;
  auto res = runner.run(plan_.prompt, g, [&](int32_t id) {
    if (n++ == 0) t_first = std::chrono::steady_clock::now();
    if (!text) return;
    const std::string delta = text->push(id);
    if (!delta.empty() && !sink.text(delta)) throw StopGeneration{"cancelled"};
    if (text->stopped()) throw StopGeneration{"stop"};
  });
  const auto t_end = std::chrono::steady_clock::now();
  if (text && res.stop_reason != "cancelled") {
    const std::string rest = text->finish();
    if (!rest.empty()) sink.text(rest);
  }
  GenerationOutcome out;
  out.tokens = res.tokens;
  if (text) out.text = text->text();
  out.stop = stop_reason_of(res.stop_reason, steering.ended_by_budget && *steering.ended_by_budget);
  out.prompt_tokens = static_cast<int64_t>(plan_.prompt.size());
  out.loop_reason = res.stop_reason;
  out.steps = res.steps;
  out.completion_tokens = static_cast<int64_t>(res.tokens.size());
  out.ttft_ms = ms_between(t0, t_first);
  if (res.tokens.size() > 1) out.decode_tok_s = (res.tokens.size() - 1) / (ms_between(t_first, t_end) / 1000.0);
  if (steering.constraint) out.relaxed_steps = steering.constraint->relaxed_steps();
  sink.finish(out);
  return out;
}

}  // namespace duet::edge
