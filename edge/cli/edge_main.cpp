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
  std::string config_path, model, server, server_key, client_key, device, dtype, wire, draft;
  int64_t draft_k = -1, edge_blocks = -1;
  bool draft_fixed = false;
  bool local = false, insecure = false, no_constraint = false, no_ending_push = false;
  int64_t max_new = 0, top_k = 0, timeout_ms = 0, seed = 0, tempo = 0, max_identical = 0;
  double temperature = 0, top_p = 0, rep = 0;
  for (auto* sc : {gen, styles, serve}) {
    sc->add_option("-c,--config", config_path, "TOML config (see configs/edge.toml)")->check(CLI::ExistingFile);
    sc->add_option("--model", model, "model folder (only embedding, norm, head and tokenizer are read)");
  }
  // how to reach the daemon and run the edge's pieces: the same for generate and serve
  auto connection_options = [&](CLI::App* sc) {
    sc->add_option("--server", server, "daemon endpoint, e.g. tcp://127.0.0.1:7700");
    sc->add_option("--server-key", server_key, "the daemon's public NAME.key to pin");
    sc->add_option("--client-key", client_key, "this client's NAME.key_secret");
    sc->add_flag("--insecure", insecure, "talk plain TCP (the daemon must run --insecure too)");
    sc->add_flag("--local", local, "run the blocks in this process: the monolithic reference");
    sc->add_option("--device", device, "edge device: cpu, cuda, cuda:N");
    sc->add_option("--dtype", dtype, "edge compute dtype: fp32, fp16, bf16");
    sc->add_option("--wire-dtype", wire, "activation dtype on the wire: fp32, fp16, bf16, int8 (per-row scales)");
    sc->add_option("--edge-blocks", edge_blocks, "keep the first K blocks here (privacy): the daemon must run "
                                                 "--first-block K and never sees the token embeddings")
        ->check(CLI::NonNegativeNumber);
    sc->add_option("--draft", draft, "several tokens per round trip: none, ngram (prompt lookup; exact for greedy "
                                     "and sampling, see docs/SPECULATION.md)");
    sc->add_option("--draft-k", draft_k, "most draft tokens per round trip (1-32, default 16)")->check(CLI::Range(1, 32));
    sc->add_flag("--draft-fixed", draft_fixed, "always draft --draft-k tokens (default: adapt to acceptance and RTT)");
    return sc->add_option("--timeout-ms", timeout_ms, "give up on the daemon after this long")
        ->check(CLI::PositiveNumber);
  };
  auto* o_timeout = connection_options(gen);
  auto* o_serve_timeout = connection_options(serve);
  std::string listen, api_key, web_dir;
  int64_t max_active = 0;
  serve->add_option("--listen", listen, "HOST:PORT to serve on (default 127.0.0.1:8080; port 0: any free one)");
  serve->add_option("--api-key", api_key, "require 'Authorization: Bearer KEY' (set it when listening beyond loopback)");
  serve->add_option("--web-dir", web_dir, "folder of the music page (web/, with node_modules from npm ci)");
  std::vector<std::string> allow_origins;
  serve->add_option("--allow-origin", allow_origins,
                    "let web pages of this origin (e.g. http://localhost:3000; * for any) call the API from a "
                    "browser; repeatable (default: only the server's own pages)");
  auto* o_active = serve->add_option("--max-active", max_active, "requests generating at once (each its own cloud session)")
                       ->check(CLI::PositiveNumber);
  gen->add_option("-p,--prompt", ga.prompt, "prompt text (needs the model's tokenizer.json)");
  gen->add_option("--prompt-ids", ga.prompt_ids, "prompt as comma-separated token ids");
  gen->add_option("--style", ga.style, "music models: style of the tune (see `duet-edge styles`)");
  gen->add_option("--meter", ga.meter, "music models: meter, e.g. 6/8, 3/4, C (default: the style's)");
  gen->add_option("--unit", ga.unit, "music models: unit note length L:, e.g. 1/8 (default: the style's)");
  gen->add_option("--key", ga.key, "music models: key, e.g. D, Ador, Em, F#m, A dorian (default: the style's)");
  gen->add_option("--title", ga.title, "music models: the tune's T: field (default: rhythm, key and seed)");
  auto* o_tempo = gen->add_option("--tempo", tempo,
                                  "music models: Q: beats per minute of the rhythm's beat (1/2 for a 4/4 reel, "
                                  "3/8 for a jig; default: the rhythm's)")
                      ->check(CLI::Range(1, 400));
  gen->add_option("--continue", ga.continue_path, "music models: continue the tune in FILE.abc (its M:, L:, K:, S:)")
      ->check(CLI::ExistingFile);
  gen->add_flag("--no-constraint", no_constraint,
                "music models: sample without the bar constraint and repetition guard (on by default)");
  gen->add_flag("--no-ending-push", no_ending_push,
                "music models: no push towards the end past the style's usual length, no clean end at a bar line "
                "before the budget runs out (on with the constraint)");
  auto* o_ident = gen->add_option("--max-identical-bars", max_identical,
                                  "music models: the repetition guard's limit of identical bars in a row (0 = off)")
                      ->check(CLI::NonNegativeNumber);
  gen->add_option("--count", ga.count, "music models: how many tunes (seeds SEED, SEED+1, ...)")->check(CLI::Range(1, 1000));
  gen->add_option("--abc-out", ga.abc_out, "music models: write the tune(s) to this .abc file (X:1, X:2, ...)");
  auto* o_max = gen->add_option("-n,--max-new-tokens", max_new, "token budget (NotaGen models: characters)")->check(CLI::PositiveNumber);
  auto* o_temp = gen->add_option("--temperature", temperature, "0 = greedy")->check(CLI::NonNegativeNumber);
  auto* o_topk = gen->add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  auto* o_topp = gen->add_option("--top-p", top_p, "keep the smallest set of tokens with this much probability (1 = off)")
                     ->check(CLI::Range(0.0, 1.0));
  auto* o_rep = gen->add_option("--repetition-penalty", rep, "1 = off")->check(CLI::PositiveNumber);
  auto* o_seed = gen->add_option("--seed", seed, "seed for sampling (printed and written into the tune)")
                     ->check(CLI::NonNegativeNumber);
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
    if (!model.empty()) cfg.model_path = model;

    if (styles->parsed()) return list_styles(cfg);

    // the model's duet.json under the config file; flags (here) and API requests (serve) on top
    duet::edge::apply_model_defaults(cfg);
    if (!server.empty()) cfg.server = server;
    if (!server_key.empty()) cfg.server_key = server_key;
    if (!client_key.empty()) cfg.client_key = client_key;
    if (insecure) cfg.insecure = true;
    if (!device.empty()) cfg.device = device;
    if (!dtype.empty()) cfg.dtype = dtype;
    if (!wire.empty()) cfg.wire_dtype = wire;
    if (edge_blocks >= 0) cfg.edge_blocks = edge_blocks;
    if (!draft.empty()) cfg.draft = draft;
    if (draft_k >= 0) cfg.draft_k = draft_k;
    if (draft_fixed) cfg.draft_adaptive = false;
    duet::edge::check_draft_settings(cfg.draft, cfg.draft_k);
    if (o_timeout->count() || o_serve_timeout->count()) cfg.timeout_ms = timeout_ms;
    if (serve->parsed()) {
      // sampling comes with each request (the API's fields), the config's [generate] as defaults
      if (!listen.empty()) cfg.listen = listen;
      if (!api_key.empty()) cfg.api_key = api_key;
      if (!web_dir.empty()) cfg.web_dir = web_dir;
      if (o_active->count()) cfg.max_active = max_active;
      for (const auto& a : allow_origins) cfg.allowed_origins.push_back(a);
#ifdef DUET_HAVE_SERVE
      return duet::edge::server::run_serve(cfg, local);
#else
      throw std::invalid_argument("this duet-edge was built without cpp-httplib (libcpp-httplib-dev): no serve");
#endif
    }
    if (o_max->count()) cfg.max_new_tokens = max_new, cfg.max_new_tokens_set = true;
    if (!ga.style.empty()) cfg.style = ga.style;
    if (!ga.meter.empty()) cfg.meter = ga.meter;
    if (!ga.unit.empty()) cfg.unit = ga.unit;
    if (!ga.key.empty()) cfg.key = ga.key;
    if (no_constraint) cfg.bar_constraint = false;
    if (no_ending_push) cfg.ending_push = false;
    if (o_ident->count()) cfg.max_identical_bars = max_identical;
    if (o_tempo->count()) cfg.tempo_bpm = tempo;

    if (o_temp->count()) cfg.sampling.temperature = temperature;
    if (o_topk->count()) cfg.sampling.top_k = top_k;
    if (o_topp->count()) cfg.sampling.top_p = top_p;
    if (o_rep->count()) cfg.sampling.repetition_penalty = rep;
    if (o_seed->count()) cfg.sampling.seed = static_cast<uint64_t>(seed);
    if (cfg.sampling.top_p <= 0) throw std::invalid_argument("--top-p must be above 0 (1 = off)");

    if (o_max->count()) ga.max_new_tokens = max_new;  // a NotaGen piece's budget: -n alone
    ga.music_flags = !ga.style.empty() || !ga.meter.empty() || !ga.unit.empty() || !ga.key.empty() ||
                     !ga.title.empty() || o_tempo->count() || !ga.continue_path.empty() || no_constraint ||
                     o_ident->count() || no_ending_push;
    return duet::edge::cli::run_generate(cfg, local, ga);
  } catch (const duet::edge::CloudError& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 1;
  }
}
