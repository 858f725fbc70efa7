#include "edge/cli/generate_sink.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "common/percentile.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/generation_report.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/generation/generation_job.hpp"

namespace duet::edge::cli {

namespace {

void warn(const std::string& s) { std::fprintf(stderr, "duet-edge: warning: %s\n", s.c_str()); }

}  // namespace

GenerateSink::GenerateSink(const GenerateReport& report, const GenerationJob& job, int64_t index)
    : r_(report), job_(job), index_(index), seed_(job.plan().sampling.seed), prompt_text_(report.prompt_text) {
  if (const TuneMaker* maker = job.tune()) {
    head_ = maker->header(static_cast<int>(index + 1), seed_);
    prompt_text_ = maker->prompt_text();
  }
  if (r_.streaming) {
    std::fputs((index ? "\n" : ""), stdout);
    std::fputs((head_ + prompt_text_).c_str(), stdout);
    std::fflush(stdout);
  }
}

bool GenerateSink::text(const std::string& delta) {
  if (!r_.streaming) return true;
  std::fputs(delta.c_str(), stdout);
  std::fflush(stdout);
  return true;
}

void GenerateSink::finish(const GenerationOutcome& out) {
  const auto& plan = job_.plan();
  const TuneMaker* maker = job_.tune();
  std::optional<Tune> tune;
  if (maker) tune = maker->tune_of(static_cast<int>(index_ + 1), seed_, out, plan.max_new_tokens, plan.max_positions);
  // the ids decoded whole, as the report always gave them (equal to the streamed text but where
  // byte-fallback tokens write invalid UTF-8)
  const auto& tok = r_.client->tokenizer();
  const std::string text = tune ? tune->text : tok ? tok->decode(out.tokens, true) : "";
  if (r_.streaming)
    std::fputs("\n", stdout);
  else if (!r_.json)
    std::printf("%s%s%s\n", head_.c_str(), prompt_text_.c_str(), text.c_str());
  if (!maker && out.loop_reason == "max_positions")
    warn("generation reached the context limit (" + std::to_string(plan.max_positions) + " positions) and stopped");
  if (tune) {
    for (const auto& w : tune->warnings) warn(w);
    abc_ = tune->abc();
  }

  std::vector<double> decode_ms;
  for (size_t k = 1; k < out.steps.size(); ++k) decode_ms.push_back(out.steps[k].edge_ms + out.steps[k].backbone_ms);
  if (r_.json) {
    print_record(out, text, tune ? &*tune : nullptr, decode_ms);
  } else {
    const EdgeConfig& cfg = *r_.cfg;
    std::fprintf(stderr, "duet-edge: %s%zu tokens (%s), seed %llu, %s, decode p50 %.2f ms/token\n",
                 r_.count > 1 ? ("tune " + std::to_string(index_ + 1) + ": ").c_str() : "", out.tokens.size(),
                 stop_text(out.stop).c_str(), static_cast<unsigned long long>(seed_),
                 r_.local ? "local" : ("via " + cfg.server).c_str(), percentile(decode_ms, 0.5));
  }
}

void GenerateSink::print_record(const GenerationOutcome& out, const std::string& text, const Tune* tune,
                                const std::vector<double>& decode_ms) const {
  const EdgeConfig& cfg = *r_.cfg;
  nlohmann::json j = record_json({r_.local, cfg.model_path, seed_, text, out.stop, r_.load_ms});
  j["prompt_ids"] = job_.plan().prompt;
  j["tokens"] = out.tokens;
  j["resumes"] = r_.client->resumes();
  if (tune) {
    const TuneMaker& maker = *job_.tune();
    const TuneRequest& req = *r_.tune;
    auto t = tune_json(tune->index, tune->abc(), tune->title, maker.options(), prompt_text_, req.constrain,
                       tune->relaxed_steps);
    t["ending_push"] = req.ending_push && req.constrain;
    t["ended_by_budget"] = tune->ended_by_budget;
    t["warnings"] = maker.warnings();
    t["tune_warnings"] = tune->warnings;
    j["tune"] = t;
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& st : out.steps) steps.push_back(round_json(st));
  j["steps"] = steps;  // one per round trip
  j["summary"] = timing_summary(GenerationResult{out.tokens, out.loop_reason, out.steps});
  j["draft"] = cfg.draft;
  // the prefill's round trip included: what a user waits for; decode rounds alone: the drafting's gain
  const auto n_steps = out.steps.size();
  j["tokens_per_round_trip"] = n_steps == 0 ? 0.0 : double(out.tokens.size()) / double(n_steps);
  j["tokens_per_decode_round_trip"] = n_steps < 2 ? 0.0 : double(out.tokens.size() - 1) / double(n_steps - 1);
  j["decode_ms_p50"] = percentile(decode_ms, 0.5);
  j["decode_ms_p99"] = percentile(decode_ms, 0.99);
  std::cout << j.dump() << "\n";
}

}  // namespace duet::edge::cli
