#include "edge/client/notagen_generate.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <optional>
#include <nlohmann/json.hpp>

#include "common/backbone.hpp"
#include "common/checkpoint.hpp"
#include "common/dtype.hpp"
#include "common/model_config.hpp"
#include "common/percentile.hpp"
#include "common/wire/tensor_frames.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/edge_client.hpp"
#include "edge/client/generation_report.hpp"
#include "edge/music/abc_file.hpp"
#include "edge/music/bar_constraint.hpp"
#include "edge/notagen/piece_generator.hpp"

namespace duet::edge {

namespace {

using nlohmann::json;

json read_duet_json(const std::string& dir) {
  std::ifstream in(dir + "/duet.json");
  if (!in) return json::object();
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(dir + "/duet.json: " + e.what());
  }
}

std::string fill(std::string t, const std::string& name, const std::string& value) {
  const std::string key = "{" + name + "}";
  for (size_t at; (at = t.find(key)) != std::string::npos;) t.replace(at, key.size(), value);
  return t;
}

std::string one_line(const char* what, const std::string& v) {
  if (v.find_first_of("\r\n") != std::string::npos || v.size() > 200)
    throw std::invalid_argument(std::string(what) + " must be one line of at most 200 characters");
  for (unsigned char c : v)
    if (c >= 128) throw std::invalid_argument(std::string(what) + " '" + v + "': NotaGen reads ASCII only");
  return v;
}

// The .abc file's tune without the lines duet-edge or a reader adds (X:, T:, Q:, % comments).
std::string continuation_text(const std::string& path, std::string* title = nullptr) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::string line, out;
  bool started = false;
  while (std::getline(in, line)) {
    if (line.rfind("X:", 0) == 0) {
      if (started) break;  // the first tune only
      started = true;
      continue;
    }
    if (line.rfind("T:", 0) == 0 && title && title->empty()) *title = line.substr(2);
    if (line.rfind("T:", 0) == 0 || line.rfind("Q:", 0) == 0 || line.rfind("% duet-edge", 0) == 0) continue;
    out += line + "\n";
  }
  return out;
}

// The edge's bar constraint (edge/music/bar_constraint.hpp) over NotaGen's characters: every
// character is a token whose text is itself; the EOS character closes a bar's patch and adds no
// text (allowed anywhere but a patch's start); the EOS patch (BOS, then EOS) ends the tune and
// may start a patch only where the constraint lets a tune end.
class BarFilter final : public notagen::CharFilter {
 public:
  BarFilter(const music::BarConstraintOptions& o, const std::string& opening)
      : c_(o, texts(), {notagen::kBos}) {
    c_.observe(opening);
  }
  void mask(torch::Tensor& logits, const notagen::Patch& so_far) override {
    auto ok = c_.allowed();
    ok.resize(static_cast<size_t>(logits.size(0)), 0);
    const bool start = so_far.empty();
    if (!start && so_far[0] == notagen::kBos) {  // the end patch goes on with EOS
      std::fill(ok.begin(), ok.end(), 0);
      ok[notagen::kEos] = 1;
    } else {
      ok[notagen::kEos] = !start;
      ok[notagen::kBos] = start && c_.can_end();
    }
    std::vector<uint8_t> forbid(ok.size());
    for (size_t i = 0; i < ok.size(); ++i) forbid[i] = !ok[i];
    auto m = torch::from_blob(forbid.data(), {static_cast<int64_t>(forbid.size())}, torch::kUInt8).to(torch::kBool);
    logits.masked_fill_(m.to(logits.device()), -std::numeric_limits<float>::infinity());
  }
  void advance(int32_t c) override {
    if (c > notagen::kEos) c_.advance(c);  // PAD, BOS and EOS are structure, not text
  }
  int64_t relaxed_steps() const { return c_.relaxed_steps(); }

 private:
  static std::vector<std::string> texts() {
    std::vector<std::string> t(128);
    for (int c = 32; c < 127; ++c) t[static_cast<size_t>(c)] = std::string(1, static_cast<char>(c));
    t['\n'] = "\n";
    return t;
  }
  music::BarConstraint c_;
};

// The prompt as the model was trained on it (its duet.json's prompt_form), with the title and
// tempo of the pieces' headers; checked before anything is loaded.
struct PiecePrompt {
  std::string prompt, title, tempo;
  std::optional<music::CheckedMusicOptions> folk;  // header-form models: the tune's options
  std::string opening;                             // a continued tune's body (the bar constraint follows it)
};

PiecePrompt piece_prompt(const EdgeConfig& cfg, const json& dj, const NotagenRequest& req) {
  const std::string form = dj.value("prompt_form", dj.contains("styles") ? "abc-header" : "period-composer-instrumentation");
  const auto spec = music::MusicModelSpec::from_model_dir(cfg.model_path);
  const bool pci_fields = !req.period.empty() || !req.composer.empty() || !req.instrumentation.empty();
  const bool folk_fields = !req.folk.style.empty() || !req.folk.meter.empty() || !req.folk.unit.empty() ||
                           !req.folk.key.empty();

  PiecePrompt pp;
  std::string& prompt = pp.prompt;
  std::string& title = pp.title;
  std::optional<music::CheckedMusicOptions>& folk = pp.folk;
  title = req.title;
  if (!req.prompt.empty()) {
    if (pci_fields || !req.continue_path.empty())
      throw std::invalid_argument("--prompt is the whole prompt: leave out --period/--composer/--instrumentation/--continue");
    prompt = req.prompt;
  } else if (form == "period-composer-instrumentation") {
    if (folk_fields)  // (they may come from a config file written for a folk model)
      std::fprintf(stderr, "duet-edge: warning: %s takes --period/--composer/--instrumentation; "
                           "style, meter, unit and key are ignored\n", cfg.model_path.c_str());
    if (!req.continue_path.empty() && pci_fields)
      throw std::invalid_argument("--continue takes the prompt from the file: leave out --period/--composer/--instrumentation");
    if (!req.continue_path.empty()) {
      prompt = continuation_text(req.continue_path, &title);
    } else {
      auto def = [&](const char* k, const std::string& v) {
        if (!v.empty()) return v;
        if (dj.contains("defaults") && dj["defaults"].contains(k)) return dj["defaults"][k].get<std::string>();
        throw std::invalid_argument(std::string("--") + k + " is needed (NotaGen's prompt: period, composer, instrumentation)");
      };
      const std::string p = one_line("--period", def("period", req.period));
      const std::string c = one_line("--composer", def("composer", req.composer));
      const std::string i = one_line("--instrumentation", def("instrumentation", req.instrumentation));
      prompt = fill(fill(fill(dj.value("prompt_template", std::string("%{period}\n%{composer}\n%{instrumentation}\n")),
                              "period", p), "composer", c), "instrumentation", i);
      if (title.empty()) title = p + ", " + c + ", " + i;
      if (dj.contains("prompts") && dj["prompts"].is_array()) {  // the combinations it was trained on
        bool known = false;
        for (const auto& k : dj["prompts"])
          known = known || (k.is_array() && k.size() == 3 && k[0] == p && k[1] == c && k[2] == i);
        if (!known)
          std::fprintf(stderr, "duet-edge: warning: %s / %s / %s is not among the %zu combinations in %s/duet.json "
                               "\"prompts\" (NotaGen's prompts.txt): the model may not follow it\n",
                       p.c_str(), c.c_str(), i.c_str(), dj["prompts"].size(), cfg.model_path.c_str());
      }
    }
  } else if (form == "raw") {
    if (req.continue_path.empty())
      throw std::invalid_argument(cfg.model_path + " has no prompt form in its duet.json: give the prompt with --prompt");
    prompt = continuation_text(req.continue_path, &title);
  } else {  // an ABC header (S:, M:, L:, K:) the way abc-folk's prompts are
    if (pci_fields) throw std::invalid_argument(cfg.model_path + " takes --style/--meter/--unit/--key, not --period/--composer/--instrumentation");
    if (!spec) throw std::invalid_argument(cfg.model_path + "/duet.json is missing: no prompt form known");
    music::MusicRequest r = req.folk;
    std::string body;
    if (!req.continue_path.empty()) {
      const auto op = music::read_abc_opening(req.continue_path);
      auto pick = [](const std::string& flag, const std::string& file) { return flag.empty() ? file : flag; };
      r = {pick(r.style, op.style), pick(r.meter, op.meter), pick(r.unit, op.unit), pick(r.key, op.key)};
      body = op.body;
      if (title.empty()) title = op.title;
    }
    folk = music::check_music_options(*spec, r);
    pp.opening = body;
    for (const auto& w : folk->warnings) std::fprintf(stderr, "duet-edge: warning: %s\n", w.c_str());
    prompt = folk->prompt + body;
    if (title.empty()) {  // "Jig in D", as abc-folk's tunes are titled
      std::string r = folk->rhythm().empty() ? "tune" : folk->rhythm();
      r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
      title = r + " in " + folk->key.text;
    }
    pp.tempo = music::tempo_field(*spec, *folk, req.tempo_bpm);
  }
  if (!req.prompt.empty() && folk_fields) throw std::invalid_argument("--prompt is the whole prompt: leave out --style/--meter/--unit/--key");
  if (notagen::split_piece(prompt).body.empty() && !prompt.empty() && prompt.back() != '\n') prompt += "\n";
  return pp;
}

// One piece's outcome: a --json record, or the summary line (and a warning when the budget ran out).
struct PieceRun {
  int64_t index = 1;  // X:
  uint64_t seed = 0;
  const notagen::PieceResult* res = nullptr;
  std::string abc;
  double gen_ms = 0, load_ms = 0;
  int64_t weight_bytes = 0;  // the edge's weights
  bool constrained = false;
  int64_t relaxed_steps = 0;
  int64_t max_chars = 0;
};

void report_piece(const EdgeConfig& cfg, bool local, const NotagenRequest& req, const PiecePrompt& pp,
                  const PieceRun& r) {
  std::vector<double> patch_ms;
  int64_t chars_run = 0;
  for (size_t k = 0; k < r.res->steps.size(); ++k) {
    chars_run += r.res->steps[k].chars;
    if (k > 0) patch_ms.push_back(r.res->steps[k].edge_ms + r.res->steps[k].backbone_ms);
  }
  const double secs = r.gen_ms / 1000.0;
  const StopReason why = stop_reason_of(r.res->stop_reason);
  if (req.json) {
    json j = record_json({local, cfg.model_path, r.seed, r.res->text, why, r.load_ms});
    j["prompt"] = pp.prompt;
    j["abc"] = r.abc;
    j["patches"] = r.res->patches.size();
    j["chars"] = r.res->text.size();
    j["chars_run"] = chars_run;
    j["cuts"] = r.res->cuts;
    j["char_sampling"] = r.res->sampled_on_device ? "device" : "host";
    j["generate_ms"] = r.gen_ms;
    j["chars_per_s"] = secs > 0 ? static_cast<double>(r.res->text.size()) / secs : 0.0;
    j["patches_per_s"] = secs > 0 ? static_cast<double>(r.res->patches.size()) / secs : 0.0;
    j["patch_ms_p50"] = percentile(patch_ms, 0.5);
    j["edge_weight_bytes"] = r.weight_bytes;
    std::vector<int32_t> codes(r.res->text.begin(), r.res->text.end());
    j["tokens"] = codes;  // the characters written, as codes (what token-level tools read)
    if (pp.folk)  // the fields abc-folk's tunes carry (scripts/abc/sample_edge.py reads them)
      j["tune"] = tune_json(r.index, r.abc, pp.title, *pp.folk, pp.prompt, r.constrained, r.relaxed_steps);
    json steps = json::array();
    for (const auto& st : r.res->steps)
      steps.push_back({{"positions", st.positions}, {"chars", st.chars}, {"edge_ms", st.edge_ms},
                       {"round_trip_ms", st.backbone_ms}, {"cloud_ms", st.cloud_ms}});
    j["steps"] = steps;
    std::cout << j.dump() << "\n";
  } else {
    std::fprintf(stderr,
                 "duet-edge: %s%zu characters in %zu patches (%s%s), seed %llu, %s, %.2f ms/patch p50, %.0f chars/s\n",
                 req.count > 1 ? ("piece " + std::to_string(r.index) + ": ").c_str() : "", r.res->text.size(),
                 r.res->patches.size(), stop_text(why).c_str(),
                 r.res->cuts ? (", " + std::to_string(r.res->cuts) + " cut(s) past the context").c_str() : "",
                 static_cast<unsigned long long>(r.seed), local ? "local" : ("via " + cfg.server).c_str(),
                 percentile(patch_ms, 0.5), secs > 0 ? static_cast<double>(r.res->text.size()) / secs : 0.0);
    if (r.res->stop_reason == "max_chars")
      std::fprintf(stderr, "duet-edge: warning: the piece used the whole budget of %lld characters before it ended\n",
                   static_cast<long long>(r.max_chars));
  }
}

}  // namespace

bool is_notagen_model(const std::string& dir) { return ModelConfig::from_dir(dir).family == Family::notagen; }

int run_notagen_generate(const EdgeConfig& cfg, bool local, const NotagenRequest& req) {
  // the piece loop sends the patch embeddings themselves: a daemon started at --first-block K
  // would take them for block K's input and write garbage
  if (!local && cfg.edge_blocks > 0)
    throw std::invalid_argument("--edge-blocks " + std::to_string(cfg.edge_blocks) +
                                ": NotaGen models keep every block on the daemon (run it without --first-block)");
  const json dj = read_duet_json(cfg.model_path);
  const PiecePrompt pp = piece_prompt(cfg, dj, req);
  const std::string& prompt = pp.prompt;
  const std::string& title = pp.title;
  const auto& folk = pp.folk;

  notagen::PieceOptions po;
  po.sampling = cfg.sampling;
  const std::string order = dj.value("sampling_order", std::string("notagen"));
  if (order != "notagen" && order != "hf")
    throw std::invalid_argument(cfg.model_path + "/duet.json: sampling_order must be \"notagen\" or \"hf\"");
  po.sampling.temperature_last = order == "notagen";
  po.max_chars = req.max_chars > 0 ? req.max_chars : dj.value("max_chars", int64_t{102400});
  po.max_patches = req.max_patches;
  po.context = req.context;
  po.full_patches = req.full_patches;
  // DUET_NOTAGEN_HOST_SAMPLING=1: every character drawn on the host, as before the device sampler
  // (the GPU benchmark times both; a seed gives the same piece either way)
  if (const char* e = std::getenv("DUET_NOTAGEN_HOST_SAMPLING"); e && std::strcmp(e, "1") == 0)
    po.char_sampling = notagen::CharSampling::host;

  const auto t_load = std::chrono::steady_clock::now();
  Checkpoint ckpt(cfg.model_path);
  const LoadOptions lo{parse_dtype(cfg.dtype), parse_device(cfg.device)};
  notagen::PieceGenerator gen(ckpt, lo);
  BlocksLink link = open_blocks(cfg, local, ckpt, lo, model_fingerprint(ckpt));
  Backbone* backbone = link.backbone.get();
  if (!local)  // the daemon's limit per session; local: the model's own context (po.context 0)
    po.context = po.context > 0 ? std::min<int64_t>(po.context, link.max_positions) : link.max_positions;
  const double load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();

  const bool streaming = req.stream && !req.json;
  std::string abc_all;
  const uint64_t seed0 = cfg.sampling.seed;
  const bool constrained = folk && req.constrain;
  for (int64_t i = 0; i < req.count; ++i) {
    const uint64_t seed = seed0 + static_cast<uint64_t>(i);
    po.sampling.seed = seed;
    std::shared_ptr<BarFilter> bars;
    if (constrained) {
      music::BarConstraintOptions bo;
      bo.bar = folk->meter.bar();
      bo.unit = folk->unit;
      bo.compound = folk->meter.compound();
      bo.max_identical_bars = req.max_identical_bars;
      bars = std::make_shared<BarFilter>(bo, pp.opening);
    }
    po.filter = bars;
    std::string head = "X:" + std::to_string(i + 1) + "\nT:" +
                       (title.empty() ? std::string("NotaGen piece") : title) + " (duet seed " + std::to_string(seed) + ")\n";
    if (!pp.tempo.empty()) head += pp.tempo + "\n";
    head += "% duet-edge: seed " + std::to_string(seed) + ", notagen, " + (local ? "local" : "split") +
            (folk ? std::string(", bar constraint ") + (constrained ? "on" : "off") : std::string()) + "\n";
    if (streaming) {
      std::fputs(((i ? "\n" : "") + head + notagen::strip_stream_markers(prompt)).c_str(), stdout);
      std::fflush(stdout);
    }
    // the stream shows the text as the .abc file has it: without the stream markers
    notagen::StreamMarkerFilter markers(prompt.empty() || prompt.back() == '\n');
    auto on_text = [&](const std::string& t) {
      if (!streaming) return;
      std::fputs(markers.push(t).c_str(), stdout);
      std::fflush(stdout);
    };
    const auto t0 = std::chrono::steady_clock::now();
    auto res = gen.generate(*backbone, prompt, po, on_text);
    const double gen_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (streaming) std::fputs((markers.finish() + "\n").c_str(), stdout);
    std::string abc = head + notagen::strip_stream_markers(prompt + res.text);
    if (abc.back() != '\n') abc += "\n";
    abc_all += (i ? "\n" : "") + abc;

    report_piece(cfg, local, req, pp, {i + 1, seed, &res, abc, gen_ms, load_ms, gen.weight_bytes(), constrained,
                                       bars ? bars->relaxed_steps() : 0, po.max_chars});
  }
  if (!req.abc_out.empty()) {
    music::write_abc_file(req.abc_out, abc_all);
    std::fprintf(stderr, "duet-edge: wrote %s (%lld piece%s)\n", req.abc_out.c_str(), static_cast<long long>(req.count),
                 req.count > 1 ? "s" : "");
  }
  return 0;
}

}  // namespace duet::edge
