#include "edge/cli/generate_sink.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "common/percentile.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/generation_report.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/client/piece_maker.hpp"
#include "edge/generation/generation_job.hpp"
#include "edge/notagen/patches.hpp"

namespace duet::edge::cli {

namespace {

void warn(const std::string& s) { std::fprintf(stderr, "duet-edge: warning: %s\n", s.c_str()); }

}  // namespace

GenerateSink::GenerateSink(const GenerateReport& report, const GenerationJob& job, int64_t index)
    : r_(report), job_(job), index_(index), seed_(job.plan().sampling.seed), prompt_text_(report.prompt_text) {
  if (const TuneMaker* maker = job.tune()) {
    head_ = maker->header(static_cast<int>(index + 1), seed_);
    prompt_text_ = maker->prompt_text();
  } else if (const PieceMaker* piece = job.piece()) {
    head_ = piece->header(static_cast<int>(index + 1), seed_, r_.local);
    prompt_text_ = notagen::strip_stream_markers(piece->prompt_text());  // as the .abc file has it
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
  // each round after the first (the prefill; a piece's prompt patches): ms per token, or per patch
  std::vector<double> decode_ms;
  for (size_t k = 1; k < out.steps.size(); ++k) decode_ms.push_back(out.steps[k].edge_ms + out.steps[k].backbone_ms);
  if (job_.piece()) return finish_piece(out, decode_ms);
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

void GenerateSink::finish_piece(const GenerationOutcome& out, const std::vector<double>& patch_ms) {
  const std::string text(out.tokens.begin(), out.tokens.end());  // what the model wrote, stream markers kept
  abc_ = job_.piece()->abc(head_, text);
  if (r_.streaming)
    std::fputs("\n", stdout);
  else if (!r_.json)
    std::fputs(abc_.c_str(), stdout);
  if (r_.json) return print_piece_record(out, text, patch_ms);
  const double secs = out.run_ms / 1000.0;
  std::fprintf(stderr,
               "duet-edge: %s%zu characters in %lld patches (%s%s), seed %llu, %s, %.2f ms/patch p50, %.0f chars/s\n",
               r_.count > 1 ? ("piece " + std::to_string(index_ + 1) + ": ").c_str() : "", text.size(),
               static_cast<long long>(out.patches), stop_text(out.stop).c_str(),
               out.cuts ? (", " + std::to_string(out.cuts) + " cut(s) past the context").c_str() : "",
               static_cast<unsigned long long>(seed_), r_.local ? "local" : ("via " + r_.cfg->server).c_str(),
               percentile(patch_ms, 0.5), secs > 0 ? static_cast<double>(text.size()) / secs : 0.0);
  if (out.loop_reason == "max_chars")
    warn("the piece used the whole budget of " + std::to_string(job_.plan().max_new_tokens) +
         " characters before it ended");
}

void GenerateSink::print_piece_record(const GenerationOutcome& out, const std::string& text,
                                      const std::vector<double>& patch_ms) const {
  const PieceMaker& piece = *job_.piece();
  nlohmann::json j = record_json({r_.local, r_.cfg->model_path, seed_, text, out.stop, r_.load_ms});
  const double secs = out.run_ms / 1000.0;
  int64_t chars_run = 0;
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& st : out.steps) {
    chars_run += st.tokens;
    steps.push_back({{"positions", st.positions}, {"chars", st.tokens}, {"edge_ms", st.edge_ms},
                     {"round_trip_ms", st.backbone_ms}, {"cloud_ms", st.cloud_ms}});
  }
  j["prompt"] = piece.prompt_text();
  j["abc"] = abc_;
  j["patches"] = out.patches;
  j["chars"] = text.size();
  j["chars_run"] = chars_run;
  j["cuts"] = out.cuts;
  j["char_sampling"] = out.chars_on_device ? "device" : "host";
  j["generate_ms"] = out.run_ms;
  j["chars_per_s"] = secs > 0 ? static_cast<double>(text.size()) / secs : 0.0;
  j["patches_per_s"] = secs > 0 ? static_cast<double>(out.patches) / secs : 0.0;
  j["patch_ms_p50"] = percentile(patch_ms, 0.5);
  j["edge_weight_bytes"] = r_.edge_weight_bytes;
  j["tokens"] = out.tokens;  // the characters written, as codes (what token-level tools read)
  if (piece.folk())  // the fields abc-folk's tunes carry (scripts/abc/sample_edge.py reads them)
    j["tune"] = tune_json(index_ + 1, abc_, piece.title(), *piece.folk(), piece.prompt_text(), piece.constrained(),
                          out.relaxed_steps);
  j["steps"] = steps;  // one per patch (round trip)
  std::cout << j.dump() << "\n";
}

}  // namespace duet::edge::cli
