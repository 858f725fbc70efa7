#include "edge/generation/generation_job.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "edge/client/music_generation.hpp"
#include "edge/client/piece_maker.hpp"
#include "edge/generation/piece_runner.hpp"
#include "edge/generation/text_stream.hpp"
#include "edge/generation/token_runner.hpp"

namespace duet::edge {

namespace {

using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

GenerationDefaults defaults_of(const GenerationOptions& g) {
  return {g.max_new_tokens, g.sampling, g.stop_ids, g.max_positions};
}

// The parts of an outcome both kinds of run fill alike, then the sink's finish.
void finish(GenerationOutcome& out, const GenerationPlan& plan, Clock::time_point t0, Clock::time_point t_first,
            Clock::time_point t_end, GenerationSink& sink) {
  out.prompt_tokens = static_cast<int64_t>(plan.prompt.size());
  out.completion_tokens = static_cast<int64_t>(out.tokens.size());
  out.ttft_ms = ms_between(t0, t_first);
  out.run_ms = ms_between(t0, t_end);
  if (out.tokens.size() > 1) out.decode_tok_s = (out.tokens.size() - 1) / (ms_between(t_first, t_end) / 1000.0);
  sink.finish(out);
}

// A patch's round as the report shows every round (tokens: the characters its decoder ran).
StepStats step_of(const notagen::PatchStep& p) {
  StepStats s;
  s.positions = p.positions;
  s.tokens = p.chars;
  s.edge_ms = p.edge_ms;
  s.backbone_ms = p.backbone_ms;
  s.cloud_ms = p.cloud_ms;
  return s;
}

}  // namespace

GenerationJob::GenerationJob(EdgeClient& client, const GenerationOptions& base, const GenerationRequest& request,
                             const music::MusicModelSpec* spec)
    : client_(&client), base_(std::make_shared<const GenerationOptions>(base)) {
  if (request.piece)
    throw std::invalid_argument(client.config().model_path + " is not a NotaGen model: a piece's options (period, "
                                "composer, instrumentation, patches) do not apply");
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

GenerationJob::GenerationJob(const PieceClient& client, const GenerationOptions& base, const GenerationRequest& request)
    : base_(std::make_shared<const GenerationOptions>(base)) {
  const std::string& model = client.config().model_path;
  if (!request.piece) throw std::invalid_argument(model + " is a NotaGen model: it writes pieces (a piece request)");
  if (!request.prompt.empty() || request.tune || !request.stop_strings.empty())
    throw std::invalid_argument(model + " is a NotaGen model: its prompt is text, written from the piece's options "
                                "(no token ids, tune options or stop strings)");
  piece_ = std::make_shared<const PieceMaker>(model, *request.piece);
  GenerationRequest r = request;
  r.prompt.assign(piece_->prompt_text().begin(), piece_->prompt_text().end());
  plan_ = resolve(defaults_of(base), r);
  if (const int64_t c = request.piece->context; c > 0)
    plan_.max_positions = plan_.max_positions > 0 ? std::min(plan_.max_positions, c) : c;
}

GenerationJob GenerationJob::with_seed(uint64_t seed) const {
  GenerationJob j = *this;
  j.plan_.sampling.seed = seed;
  return j;
}

GenerationOutcome GenerationJob::run(TokenRunner& runner, GenerationSink& sink) const {
  if (piece_) throw std::logic_error("GenerationJob: a NotaGen piece runs on a PieceRunner");
  GenerationOptions g = *base_;
  g.max_new_tokens = plan_.max_new_tokens;
  g.sampling = plan_.sampling;
  g.stop_ids = plan_.stop_ids;
  g.max_positions = plan_.max_positions;
  TuneSteering steering;
  if (tune_) steering = tune_->steer(g, plan_.prompt.size());

  std::optional<TextStream> text;  // none without a tokenizer: tokens only
  if (client_->tokenizer()) text.emplace(*client_->tokenizer(), plan_.stop_strings);
  const auto t0 = Clock::now();
  auto t_first = t0;
  size_t n = 0;
  auto res = runner.run(plan_.prompt, g, [&](int32_t id) {
    if (n++ == 0) t_first = Clock::now();
    if (!text) return;
    const std::string delta = text->push(id);
    if (!delta.empty() && !sink.text(delta)) throw StopGeneration{"cancelled"};
    if (text->stopped()) throw StopGeneration{"stop"};
  });
  const auto t_end = Clock::now();
  if (text && res.stop_reason != "cancelled") {
    const std::string rest = text->finish();
    if (!rest.empty()) sink.text(rest);
  }
  GenerationOutcome out;
  out.tokens = res.tokens;
  if (text) out.text = text->text();
  out.stop = stop_reason_of(res.stop_reason, steering.ended_by_budget && *steering.ended_by_budget);
  out.loop_reason = res.stop_reason;
  out.steps = res.steps;
  if (steering.constraint) out.relaxed_steps = steering.constraint->relaxed_steps();
  finish(out, plan_, t0, t_first, t_end, sink);
  return out;
}

GenerationOutcome GenerationJob::run(PieceRunner& runner, GenerationSink& sink) const {
  if (!piece_) throw std::logic_error("GenerationJob: only a NotaGen piece runs on a PieceRunner");
  notagen::PieceOptions po;
  po.sampling = plan_.sampling;
  po.max_chars = plan_.max_new_tokens;
  po.max_patches = plan_.piece->max_patches;
  po.context = plan_.max_positions;
  po.full_patches = plan_.piece->full_patches;
  // DUET_NOTAGEN_HOST_SAMPLING=1: every character drawn on the host, as before the device sampler
  // (the GPU benchmark times both; a seed gives the same piece either way)
  if (const char* e = std::getenv("DUET_NOTAGEN_HOST_SAMPLING"); e && std::strcmp(e, "1") == 0)
    po.char_sampling = notagen::CharSampling::host;
  const auto constraint = piece_->steer(po);

  const std::string& prompt = piece_->prompt_text();
  // the text as the .abc file has it: without the stream markers
  notagen::StreamMarkerFilter markers(prompt.empty() || prompt.back() == '\n');
  std::string written, shown;  // what the model wrote (markers kept), what the sink got
  const auto t0 = Clock::now();
  auto t_first = t0;
  notagen::PieceResult res;
  try {
    res = runner.run(prompt, po, [&](const std::string& t) {
      if (written.empty()) t_first = Clock::now();
      written += t;
      const std::string delta = markers.push(t);
      shown += delta;
      if (!delta.empty() && !sink.text(delta)) throw StopGeneration{"cancelled"};
    });
  } catch (const StopGeneration& stop) {  // the loop's own result is lost: the text is kept here
    res = notagen::PieceResult{};
    res.text = written;
    res.stop_reason = stop.reason;
  }
  const auto t_end = Clock::now();
  if (res.stop_reason != "cancelled") {
    const std::string rest = markers.finish();
    shown += rest;
    if (!rest.empty()) sink.text(rest);
  }
  GenerationOutcome out;
  out.tokens.assign(res.text.begin(), res.text.end());
  out.text = shown;
  out.stop = stop_reason_of(res.stop_reason);
  out.loop_reason = res.stop_reason;
  for (const auto& st : res.steps) out.steps.push_back(step_of(st));
  out.patches = static_cast<int64_t>(res.patches.size());
  out.cuts = res.cuts;
  out.chars_on_device = res.sampled_on_device;
  if (constraint) out.relaxed_steps = constraint->relaxed_steps();
  finish(out, plan_, t0, t_first, t_end, sink);
  return out;
}

}  // namespace duet::edge
