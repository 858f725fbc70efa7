#include "edge/cli/generate_command.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

#include "common/percentile.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/generation_report.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/client/stop_reason.hpp"
#include "edge/music/abc_file.hpp"

namespace duet::edge::cli {

namespace {

void warn(const std::string& s) { std::fprintf(stderr, "duet-edge: warning: %s\n", s.c_str()); }

std::vector<int32_t> parse_ids(const std::string& s) {
  std::vector<int32_t> ids;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) {
    try {
      size_t used = 0;
      long v = std::stol(item, &used);
      if (used != item.size() || v < 0 || v > INT32_MAX) throw std::invalid_argument(item);
      ids.push_back(static_cast<int32_t>(v));
    } catch (const std::exception&) {
      throw std::invalid_argument("--prompt-ids: '" + item + "' is not a token id (comma-separated integers)");
    }
  }
  return ids;
}

// a field from --continue's file, unless a flag says otherwise (then both must agree)
std::string merge_field(const char* flag, const std::string& given, const std::string& from_file,
                        const std::string& file, std::string (*canon)(const std::string&)) {
  if (given.empty() || from_file.empty()) return given.empty() ? from_file : given;
  if (canon(given) != canon(from_file))
    throw std::invalid_argument(std::string(flag) + " " + given + " disagrees with " + file + " (" + from_file +
                                "): leave the flag out to continue the tune as written");
  return given;
}

// The tune asked for: the merged options, or --continue's file under the flags; checked against
// the model's duet.json before anything is loaded.
TuneRequest tune_request(const EdgeConfig& cfg, const music::MusicModelSpec& spec, const GenerateArgs& a) {
  TuneRequest req;
  req.options = {cfg.style, cfg.meter, cfg.unit, cfg.key};
  if (!a.continue_path.empty()) {
    const auto op = music::read_abc_opening(a.continue_path);
    auto canon_meter = [](const std::string& s) { return music::parse_meter(s).text; };
    auto canon_unit = [](const std::string& s) { return music::parse_unit(s).str(); };
    auto canon_key = [](const std::string& s) { return music::parse_key(s).text; };
    auto same = [](const std::string& s) { return s; };
    try {
      req.options.style = merge_field("--style", a.style, op.style, a.continue_path, +same);
      if (req.options.style.empty()) req.options.style = cfg.style;
      req.options.meter = merge_field("--meter", a.meter, op.meter, a.continue_path, +canon_meter);
      // ABC: no L: means the meter's default unit, not the style's
      std::string file_unit = op.unit;
      if (file_unit.empty() && !op.meter.empty()) file_unit = music::default_unit(music::parse_meter(op.meter)).str();
      req.options.unit = merge_field("--unit", a.unit, file_unit, a.continue_path, +canon_unit);
      req.options.key = merge_field("--key", a.key, op.key, a.continue_path, +canon_key);
    } catch (const music::AbcFieldError& e) {
      throw std::invalid_argument(a.continue_path + ": " + e.what());
    }
    req.opening = op.body;
    req.title = op.title;
  }
  if (!a.title.empty()) req.title = a.title;
  req.tempo_bpm = cfg.tempo_bpm;
  req.constrain = cfg.bar_constraint;
  req.max_identical_bars = static_cast<int>(cfg.max_identical_bars);
  req.ending_push = cfg.ending_push;
  (void)music::check_music_options(spec, req.options);  // refuse before loading anything
  return req;
}

// One run's outcome, as --json's record or the summary line.
struct RunReport {
  uint64_t seed = 0;
  const GenerationResult* res = nullptr;
  std::string text;
  StopReason why = StopReason::budget;
  const Tune* tune = nullptr;  // tunes only
};

void print_record(const EdgeConfig& cfg, bool local, const EdgeClient& client, double load_ms,
                  const std::vector<int32_t>& ids, const std::optional<TuneMaker>& maker, const TuneRequest& req,
                  const std::string& prompt_text, const RunReport& r, const std::vector<double>& decode_ms) {
  const GenerationResult& res = *r.res;
  nlohmann::json j = record_json({local, cfg.model_path, r.seed, r.text, r.why, load_ms});
  j["prompt_ids"] = ids;
  j["tokens"] = res.tokens;
  j["resumes"] = client.resumes();
  if (maker) {
    const Tune& tune = *r.tune;
    auto t = tune_json(tune.index, tune.abc(), tune.title, maker->options(), prompt_text, req.constrain,
                       tune.relaxed_steps);
    t["ending_push"] = req.ending_push && req.constrain;
    t["ended_by_budget"] = tune.ended_by_budget;
    t["warnings"] = maker->warnings();
    t["tune_warnings"] = tune.warnings;
    j["tune"] = t;
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& st : res.steps) steps.push_back(round_json(st));
  j["steps"] = steps;  // one per round trip
  j["summary"] = timing_summary(res);
  j["draft"] = cfg.draft;
  // the prefill's round trip included: what a user waits for; decode rounds alone: the drafting's gain
  j["tokens_per_round_trip"] = res.steps.empty() ? 0.0 : double(res.tokens.size()) / double(res.steps.size());
  j["tokens_per_decode_round_trip"] =
      res.steps.size() < 2 ? 0.0 : double(res.tokens.size() - 1) / double(res.steps.size() - 1);
  j["decode_ms_p50"] = percentile(decode_ms, 0.5);
  j["decode_ms_p99"] = percentile(decode_ms, 0.99);
  std::cout << j.dump() << "\n";
}

}  // namespace

int run_generate(const EdgeConfig& cfg, bool local, const GenerateArgs& a) {
  const auto music = music::MusicModelSpec::from_model_dir(cfg.model_path);
  // a tune (music model, no raw prompt) or plain text/ids
  const bool tune_mode = music && a.prompt.empty() && a.prompt_ids.empty();
  if (!tune_mode && a.music_flags)
    throw std::invalid_argument(music ? "--style/--meter/--unit/--key/--title/--tempo/--continue/--no-constraint "
                                        "build the prompt of a tune: leave out --prompt/--prompt-ids"
                                      : cfg.model_path + " has no duet.json: it is not a music model, so --style, "
                                        "--meter, --unit, --key, --title, --tempo, --continue and --no-constraint "
                                        "do not apply");
  if (!tune_mode && (a.count != 1 || !a.abc_out.empty()))
    throw std::invalid_argument("--count and --abc-out are for tunes of a music model (no --prompt/--prompt-ids)");

  // options are checked before any model is loaded or daemon contacted
  const TuneRequest req = tune_mode ? tune_request(cfg, *music, a) : TuneRequest{};
  if (a.check_only) return 0;

  const auto t_load = std::chrono::steady_clock::now();
  EdgeClient client(cfg, local);
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();
  const auto& tok = client.tokenizer();

  auto opts = client.default_options();
  if (a.ignore_eos) opts.stop_ids.clear();

  std::optional<TuneMaker> maker;
  std::vector<int32_t> ids;
  std::string prompt_text;
  if (tune_mode) {
    maker.emplace(client, *music, req);
    for (const auto& w : maker->warnings()) warn(w);
    prompt_text = maker->prompt_text();
    ids = tok->encode(prompt_text, true);
    if (!req.opening.empty())
      std::fprintf(stderr, "duet-edge: continuing %s (%zu characters of tune body)\n", a.continue_path.c_str(),
                   req.opening.size());
  } else if (!a.prompt_ids.empty()) {
    ids = parse_ids(a.prompt_ids);
  } else {
    prompt_text = a.prompt;
    if (prompt_text.empty()) throw std::invalid_argument("no prompt: give --prompt TEXT or --prompt-ids 1,2,3");
    if (!tok) throw std::invalid_argument(cfg.model_path + " has no tokenizer.json: give the prompt as --prompt-ids");
    ids = tok->encode(prompt_text, true);
  }
  if (opts.max_positions > 0 && static_cast<int64_t>(ids.size()) + opts.max_new_tokens > opts.max_positions)
    warn("the prompt (" + std::to_string(ids.size()) + " tokens) and -n " + std::to_string(opts.max_new_tokens) +
         " go past the " + std::to_string(opts.max_positions) + " positions the model (or daemon) allows: " +
         "generation stops at that limit");

  const bool streaming = !a.json && !a.no_stream && tok;
  std::string abc_text;
  const uint64_t seed0 = cfg.sampling.seed;
  for (int64_t i = 0; i < a.count; ++i) {
    const uint64_t s = seed0 + static_cast<uint64_t>(i);
    std::optional<tokenizer::StreamDecoder> stream;
    std::string head;
    if (tune_mode) head = maker->header(static_cast<int>(i + 1), s);
    if (streaming) {
      stream.emplace(*tok, true);
      std::fputs((i ? "\n" : ""), stdout);
      std::fputs((head + prompt_text).c_str(), stdout);
      std::fflush(stdout);
    }
    auto on_token = [&](int32_t id) {
      if (!streaming) return;
      std::fputs(stream->push(id).c_str(), stdout);
      std::fflush(stdout);
    };
    Tune tune;
    GenerationResult res;
    std::string text;
    if (tune_mode) {
      tune = maker->make(static_cast<int>(i + 1), s, opts, on_token);
      res = tune.result;
      text = tune.text;
      abc_text += (i ? "\n" : "") + tune.abc();
    } else {
      auto o = opts;
      o.sampling.seed = s;
      res = client.generate(ids, o, on_token);
      text = tok ? tok->decode(res.tokens, true) : "";
    }
    if (streaming) {
      std::fputs(stream->flush().c_str(), stdout);
      std::fputs("\n", stdout);
    } else if (!a.json) {
      std::printf("%s%s%s\n", head.c_str(), prompt_text.c_str(), text.c_str());
    }
    if (!tune_mode && res.stop_reason == "max_positions")
      warn("generation reached the context limit (" + std::to_string(opts.max_positions) + " positions) and stopped");
    for (const auto& w : tune.warnings) warn(w);

    std::vector<double> decode_ms;
    for (size_t k = 1; k < res.steps.size(); ++k) decode_ms.push_back(res.steps[k].edge_ms + res.steps[k].backbone_ms);
    // the same reason the page and the API give
    const RunReport r{s, &res, text, stop_reason_of(res.stop_reason, tune.ended_by_budget), &tune};
    if (a.json) {
      print_record(cfg, local, client, load_ms, ids, maker, req, prompt_text, r, decode_ms);
    } else {
      std::fprintf(stderr, "duet-edge: %s%zu tokens (%s), seed %llu, %s, decode p50 %.2f ms/token\n",
                   a.count > 1 ? ("tune " + std::to_string(i + 1) + ": ").c_str() : "", res.tokens.size(),
                   stop_text(r.why).c_str(), static_cast<unsigned long long>(s),
                   local ? "local" : ("via " + cfg.server).c_str(), percentile(decode_ms, 0.5));
    }
  }
  if (!a.abc_out.empty()) {  // whole or nothing: a failed run leaves no half-written file behind
    music::write_abc_file(a.abc_out, abc_text);
    std::fprintf(stderr, "duet-edge: wrote %s (%lld tune%s, seed%s %llu%s)\n", a.abc_out.c_str(),
                 static_cast<long long>(a.count), a.count > 1 ? "s" : "", a.count > 1 ? "s" : "",
                 static_cast<unsigned long long>(seed0),
                 a.count > 1 ? ("-" + std::to_string(seed0 + static_cast<uint64_t>(a.count) - 1)).c_str() : "");
  }
  return 0;
}

}  // namespace duet::edge::cli
