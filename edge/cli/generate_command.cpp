#include "edge/cli/generate_command.hpp"

#include <chrono>
#include <cstdio>
#include <functional>
#include <sstream>

#include "edge/cli/generate_sink.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/client/piece_client.hpp"
#include "edge/client/piece_maker.hpp"
#include "edge/generation/piece_runner.hpp"
#include "edge/generation/token_runner.hpp"
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

}  // namespace

std::optional<TuneRequest> generate_tune(const EdgeConfig& cfg, const music::MusicModelSpec* music,
                                         const GenerateArgs& a) {
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
  if (!tune_mode) return std::nullopt;
  return tune_request(cfg, *music, a);
}

GenerationJob generate_job(EdgeClient& client, const EdgeConfig& cfg, const GenerateArgs& a,
                           const std::optional<TuneRequest>& tune, const music::MusicModelSpec* spec) {
  auto base = client.default_options();  // config < duet.json < flags, merged into cfg
  if (a.ignore_eos) base.stop_ids.clear();
  GenerationRequest r;
  r.overrides.seed = cfg.sampling.seed;  // the flags are in the base; the seed is chosen, never drawn
  if (tune) {
    r.tune = tune;
  } else if (!a.prompt_ids.empty()) {
    r.prompt = parse_ids(a.prompt_ids);
  } else {
    if (a.prompt.empty()) throw std::invalid_argument("no prompt: give --prompt TEXT or --prompt-ids 1,2,3");
    const auto& tok = client.tokenizer();
    if (!tok) throw std::invalid_argument(cfg.model_path + " has no tokenizer.json: give the prompt as --prompt-ids");
    r.prompt = tok->encode(a.prompt, /*add_special_tokens=*/true);
  }
  return GenerationJob(client, base, r, spec);
}

PieceRequest generate_piece(const EdgeConfig& cfg, const GenerateArgs& a) {
  if (!a.prompt_ids.empty()) throw std::invalid_argument("NotaGen models take text prompts: use --prompt, not --prompt-ids");
  if (a.ignore_eos) throw std::invalid_argument("--ignore-eos does not apply to NotaGen models (see --max-patches)");
  PieceRequest p;
  p.prompt = a.prompt;
  p.period = a.period, p.composer = a.composer, p.instrumentation = a.instrumentation;
  p.folk = {cfg.style, cfg.meter, cfg.unit, cfg.key};
  p.continue_path = a.continue_path;
  p.title = a.title;
  p.tempo_bpm = cfg.tempo_bpm;
  p.max_patches = a.max_patches;
  p.context = a.patch_context;
  p.full_patches = a.full_patches;
  p.constrain = cfg.bar_constraint;
  p.max_identical_bars = static_cast<int>(cfg.max_identical_bars);
  (void)PieceMaker(cfg.model_path, p);  // refuse before loading anything
  return p;
}

GenerationJob piece_job(const PieceClient& client, const EdgeConfig& cfg, const GenerateArgs& a,
                        const PieceRequest& piece) {
  GenerationRequest r;
  r.piece = piece;
  r.overrides.seed = cfg.sampling.seed;  // as for tokens: the seed is chosen, never drawn
  r.overrides.max_new_tokens = a.max_new_tokens;
  return GenerationJob(client, client.default_options(), r);
}

namespace {

// --count runs of job (seeds SEED, SEED+1, ...), each printed by its own sink, then --abc-out
// whole or nothing (a failed run leaves no half-written file behind). noun: "tune" or "piece".
void run_count(const GenerateArgs& a, const GenerateReport& report, const GenerationJob& job, const char* noun,
               const std::function<void(const GenerationJob&, GenerationSink&)>& run) {
  std::string abc_text;
  const uint64_t seed0 = job.plan().sampling.seed;
  for (int64_t i = 0; i < a.count; ++i) {
    const GenerationJob one = job.with_seed(seed0 + static_cast<uint64_t>(i));
    GenerateSink sink(report, one, i);
    run(one, sink);
    if (!sink.abc().empty()) abc_text += (i ? "\n" : "") + sink.abc();
  }
  if (a.abc_out.empty()) return;
  music::write_abc_file(a.abc_out, abc_text);
  std::fprintf(stderr, "duet-edge: wrote %s (%lld %s%s, seed%s %llu%s)\n", a.abc_out.c_str(),
               static_cast<long long>(a.count), noun, a.count > 1 ? "s" : "", a.count > 1 ? "s" : "",
               static_cast<unsigned long long>(seed0),
               a.count > 1 ? ("-" + std::to_string(seed0 + static_cast<uint64_t>(a.count) - 1)).c_str() : "");
}

double ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t).count();
}

// A NotaGen model's pieces: the same job, sink and report on its PieceClient
int run_pieces(const EdgeConfig& cfg, bool local, const GenerateArgs& a) {
  const PieceRequest piece = generate_piece(cfg, a);
  if (a.check_only) return 0;
  const auto t_load = std::chrono::steady_clock::now();
  PieceClient client(cfg, local);
  const double load_ms = ms_since(t_load);
  const GenerationJob job = piece_job(client, cfg, a, piece);
  for (const auto& w : job.piece()->warnings()) warn(w);

  GenerateReport report;
  report.cfg = &cfg;
  report.local = local;
  report.load_ms = load_ms;
  report.json = a.json;
  report.streaming = !a.json && !a.no_stream;
  report.count = a.count;
  report.edge_weight_bytes = client.weight_bytes();
  ClientPieceRunner runner(client);
  run_count(a, report, job, "piece", [&](const GenerationJob& one, GenerationSink& sink) { (void)one.run(runner, sink); });
  return 0;
}

}  // namespace

int run_generate(const EdgeConfig& cfg, bool local, const GenerateArgs& a) {
  // the model's family picks the runner: NotaGen's writes a patch per round trip
  if (!cfg.model_path.empty() && is_notagen_model(cfg.model_path)) return run_pieces(cfg, local, a);
  if (a.notagen_flags())
    throw std::invalid_argument("--period, --composer, --instrumentation, --max-patches, --patch-context and "
                                "--full-patches are for NotaGen models (" + cfg.model_path + " is not one)");
  const auto music = music::MusicModelSpec::from_model_dir(cfg.model_path);
  // options are checked before any model is loaded or daemon contacted
  const std::optional<TuneRequest> tune = generate_tune(cfg, music ? &*music : nullptr, a);
  if (a.check_only) return 0;

  const auto t_load = std::chrono::steady_clock::now();
  EdgeClient client(cfg, local);
  const double load_ms = ms_since(t_load);

  const GenerationJob job = generate_job(client, cfg, a, tune, music ? &*music : nullptr);
  const GenerationPlan& plan = job.plan();
  if (job.tune()) {
    for (const auto& w : job.tune()->warnings()) warn(w);
    if (!tune->opening.empty())
      std::fprintf(stderr, "duet-edge: continuing %s (%zu characters of tune body)\n", a.continue_path.c_str(),
                   tune->opening.size());
  }
  if (plan.max_positions > 0 && static_cast<int64_t>(plan.prompt.size()) + plan.max_new_tokens > plan.max_positions)
    warn("the prompt (" + std::to_string(plan.prompt.size()) + " tokens) and -n " +
         std::to_string(plan.max_new_tokens) + " go past the " + std::to_string(plan.max_positions) +
         " positions the model (or daemon) allows: generation stops at that limit");

  GenerateReport report;
  report.cfg = &cfg;
  report.local = local;
  report.client = &client;
  report.load_ms = load_ms;
  report.json = a.json;
  report.streaming = !a.json && !a.no_stream && client.tokenizer();
  report.count = a.count;
  report.tune = tune ? &*tune : nullptr;
  if (!tune && a.prompt_ids.empty()) report.prompt_text = a.prompt;
  ClientRunner runner(client);
  run_count(a, report, job, "tune", [&](const GenerationJob& one, GenerationSink& sink) { (void)one.run(runner, sink); });
  return 0;
}

}  // namespace duet::edge::cli
