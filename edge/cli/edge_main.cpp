// duet-edge: generates text with the embedding, final norm, head and sampler here and the
// transformer blocks on a duet-cloud daemon (or, with --local, in this process). This file reads
// the command line into an EdgeConfig (config file < the model's duet.json < flags) and hands it
// to the subcommand: styles (here), serve (edge/server), generate (generate_command: one
// GenerationJob per run, its runner chosen by the model's family).
//   duet-edge generate --config configs/edge.toml --style oneills-jig --abc-out tune.abc
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "edge/cli/generate_command.hpp"
#include "edge/client/cloud_connection.hpp"
#include "edge/client/model_defaults.hpp"
#include "edge/music/music_options.hpp"
#include "common/setting_flags.hpp"
#ifdef DUET_HAVE_SERVE
#include "edge/server/serve.hpp"
#endif

namespace {

// duet-edge styles: what a music model knows, from its duet.json
int list_styles(const duet::edge::EdgeConfig& cfg) {
  auto spec = duet::music::MusicModelSpec::from_model_dir(cfg.model_path);
  if (!spec) throw std::invalid_argument(cfg.model_path + " has no duet.json: it is not a music model");
  auto list = [](const char* name, const std::vector<std::string>& v) {
    std::printf("%s:", name);
    for (const auto& s : v) std::printf(" %s", s.c_str());
    std::printf("\n");
  };
  list("styles", spec->styles);
  list("meters", spec->meters);
  list("units", spec->units);
  list("keys", spec->keys);
  std::printf("per style (default meter, unit, key; trained meter/unit combinations):\n");
  for (const auto& [name, st] : spec->style_stats) {
    std::printf("  %-22s M:%s L:%s K:%s ", name.c_str(), st.meter.c_str(), st.unit.c_str(), st.key.c_str());
    for (const auto& [combo, n] : st.combos) std::printf(" [%s: %lld]", combo.c_str(), static_cast<long long>(n));
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-edge: split inference client (embedding, norm, head and sampling here; blocks on duet-cloud)"};
  app.require_subcommand(1);
  auto* gen = app.add_subcommand("generate", "generate from a prompt");
  auto* styles = app.add_subcommand("styles", "list the styles, meters and keys a music model knows");
  auto* serve = app.add_subcommand("serve", "serve an OpenAI-compatible API (and, for music models, the music page) "
                                            "over HTTP, each request its own cloud session");

  duet::edge::cli::GenerateArgs ga;  // what generate needs past the config (and the flags it keeps as given)
  std::string config_path;
  bool local = false;
  // the settings table's flags, each on the subcommands it belongs to; applied over the config
  // file and the model's duet.json
  duet::settings::FlagsGiven<duet::edge::EdgeConfig> given;
  for (auto [sc, bit] : {std::pair{gen, duet::edge::kGenerate}, {serve, duet::edge::kServe}, {styles, duet::edge::kStyles}}) {
    sc->add_option("-c,--config", config_path, "TOML config (see configs/edge.toml)")->check(CLI::ExistingFile);
    duet::settings::add_flags(*sc, duet::edge::edge_settings(), bit, given);
  }
  for (auto* sc : {gen, serve}) sc->add_flag("--local", local, "run the blocks in this process: the monolithic reference");
  gen->add_option("-p,--prompt", ga.prompt, "prompt text (needs the model's tokenizer.json)");
  gen->add_option("--prompt-ids", ga.prompt_ids, "prompt as comma-separated token ids");
  gen->add_option("--title", ga.title, "music models: the tune's T: field (default: rhythm, key and seed)");
  gen->add_option("--continue", ga.continue_path, "music models: continue the tune in FILE.abc (its M:, L:, K:, S:)")
      ->check(CLI::ExistingFile);
  gen->add_option("--count", ga.count, "music models: how many tunes (seeds SEED, SEED+1, ...)")->check(CLI::Range(1, 1000));
  gen->add_option("--abc-out", ga.abc_out, "music models: write the tune(s) to this .abc file (X:1, X:2, ...)");
  gen->add_option("--period", ga.period, "NotaGen models: the period of the piece, e.g. Classical, Romantic, Baroque");
  gen->add_option("--composer", ga.composer, "NotaGen models: the composer, e.g. 'Beethoven, Ludwig van'");
  gen->add_option("--instrumentation", ga.instrumentation, "NotaGen models: e.g. Keyboard, Chamber, Orchestral");
  gen->add_option("--max-patches", ga.max_patches, "NotaGen models: patches to generate at most (default: no limit)")
      ->check(CLI::PositiveNumber);
  gen->add_option("--patch-context", ga.patch_context,
                  "NotaGen models: cut and re-encode the piece at this many patches (default: the model's context)")
      ->check(CLI::Range(4, 1 << 20));
  gen->add_flag("--full-patches", ga.full_patches,
                "NotaGen models: draw all 16 characters of every patch, as NotaGen's loop does (default: stop at its EOS)");
  gen->add_flag("--json", ga.json,
                "print one JSON record per tune or piece (ids, text, each round trip's timings and a summary) "
                "instead of streaming");
  gen->add_flag("--no-stream", ga.no_stream, "print the text once at the end");
  gen->add_flag("--ignore-eos", ga.ignore_eos, "run to the token budget even past EOS (benchmarks)");
  gen->add_flag("--check", ga.check_only,
                "check the options (style, meter, unit, key, ...) and exit: no model is loaded, no daemon contacted");
  CLI11_PARSE(app, argc, argv);

  try {
    duet::edge::EdgeConfig cfg;
    if (!config_path.empty()) cfg = duet::edge::EdgeConfig::from_toml_file(config_path);
    given.apply(cfg, "path");  // the model whose duet.json comes next

    if (styles->parsed()) return list_styles(cfg);

    // the model's duet.json under the config file; flags (here) and API requests (serve) on top
    duet::edge::apply_model_defaults(cfg);
    given.apply(cfg);
    duet::edge::check_draft_settings(cfg.draft, cfg.draft_k);
    if (serve->parsed()) {
      // sampling comes with each request (the API's fields), the config's [generate] as defaults
#ifdef DUET_HAVE_SERVE
      return duet::edge::server::run_serve(cfg, local);
#else
      throw std::invalid_argument("this duet-edge was built without cpp-httplib (libcpp-httplib-dev): no serve");
#endif
    }
    // what the tune's prompt is built from, as given here (--continue reads the rest from its file)
    for (const auto& [setting, text] : given.items) {
      const std::string key = setting->key;
      if (key == "style") ga.style = text;
      if (key == "meter") ga.meter = text;
      if (key == "unit") ga.unit = text;
      if (key == "key") ga.key = text;
      if (std::string(setting->section) == "music") ga.music_flags = true;
    }
    if (given.given("max_new_tokens")) ga.max_new_tokens = cfg.max_new_tokens;  // a NotaGen piece's budget: -n alone
    ga.music_flags = ga.music_flags || !ga.title.empty() || !ga.continue_path.empty();
    return duet::edge::cli::run_generate(cfg, local, ga);
  } catch (const duet::edge::CloudError& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 1;
  }
}
