// duet-edge: generates text with the embedding, final norm, head and sampler here and the
// transformer blocks on a duet-cloud daemon (or, with --local, in this process).
//   duet-edge generate --config configs/edge.toml --style oneills-jig --abc-out tune.abc
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "edge/client/edge_client.hpp"
#include "edge/client/music_prompt.hpp"
#ifdef DUET_HAVE_SERVE
#include "edge/server/serve.hpp"
#endif

namespace {

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

double percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(q * (v.size() - 1) + 0.5)];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-edge: split inference client (embedding, norm, head and sampling here; blocks on duet-cloud)"};
  app.require_subcommand(1);
  auto* gen = app.add_subcommand("generate", "generate from a prompt");
  auto* styles = app.add_subcommand("styles", "list the styles, meters and keys a music model knows");
  auto* serve = app.add_subcommand("serve", "serve an OpenAI-compatible API (and, for music models, the music page) "
                                            "over HTTP, each request its own cloud session");

  std::string config_path, model, server, server_key, client_key, device, dtype, wire, prompt, prompt_ids;
  std::string style, meter, unit, key, abc_out;
  bool local = false, json = false, insecure = false, no_stream = false, ignore_eos = false;
  int64_t max_new = -1, top_k = -1, timeout_ms = -1;
  double temperature = -1, top_p = -1, rep = -1;
  int64_t seed = -1;
  for (auto* sc : {gen, styles, serve}) {
    sc->add_option("-c,--config", config_path, "TOML config (see configs/edge.toml)")->check(CLI::ExistingFile);
    sc->add_option("--model", model, "model folder (only embedding, norm, head and tokenizer are read)");
  }
  std::string listen, api_key, web_dir;
  int64_t max_active = -1;
  for (auto* sc : {gen, serve}) {
    sc->add_option("--server", server, "daemon endpoint, e.g. tcp://127.0.0.1:7700");
    sc->add_option("--server-key", server_key, "the daemon's public NAME.key to pin");
    sc->add_option("--client-key", client_key, "this client's NAME.key_secret");
    sc->add_flag("--insecure", insecure, "talk plain TCP (the daemon must run --insecure too)");
    sc->add_flag("--local", local, "run the blocks in this process: the monolithic reference");
    sc->add_option("--device", device, "edge device: cpu, cuda, cuda:N");
    sc->add_option("--dtype", dtype, "edge compute dtype: fp32, fp16, bf16");
    sc->add_option("--wire-dtype", wire, "activation dtype on the wire: fp32, fp16, bf16");
    sc->add_option("--timeout-ms", timeout_ms, "give up on the daemon after this long");
    sc->add_option("-n,--max-new-tokens", max_new, "token budget");
    sc->add_option("--temperature", temperature, "0 = greedy");
    sc->add_option("--top-k", top_k, "keep the k most likely tokens (0 = off)");
    sc->add_option("--top-p", top_p, "keep the smallest set of tokens with this much probability (1 = off)");
    sc->add_option("--repetition-penalty", rep, "1 = off");
    sc->add_option("--seed", seed, "seed for sampling");
  }
  gen->add_option("-p,--prompt", prompt, "prompt text (needs the model's tokenizer.json)");
  gen->add_option("--prompt-ids", prompt_ids, "prompt as comma-separated token ids");
  gen->add_option("--style", style, "music models: style of the tune (see `duet-edge styles`)");
  gen->add_option("--meter", meter, "music models: meter, e.g. 6/8");
  gen->add_option("--unit", unit, "music models: unit note length, e.g. 1/8");
  gen->add_option("--key", key, "music models: key, e.g. D, Ador, Em");
  gen->add_option("--abc-out", abc_out, "music models: write the tune (with an X: line) to this .abc file");
  serve->add_option("--listen", listen, "HOST:PORT to serve on (default 127.0.0.1:8080; port 0: any free one)");
  serve->add_option("--api-key", api_key, "require 'Authorization: Bearer KEY' (set it when listening beyond loopback)");
  serve->add_option("--web-dir", web_dir, "folder of the music page (web/, with node_modules from npm ci)");
  serve->add_option("--max-active", max_active, "requests generating at once (each its own cloud session)");
  gen->add_flag("--json", json, "print one JSON record (ids, text, per-step timings) instead of streaming");
  gen->add_flag("--no-stream", no_stream, "print the text once at the end");
  gen->add_flag("--ignore-eos", ignore_eos, "run to the token budget even past EOS (benchmarks)");
  CLI11_PARSE(app, argc, argv);

  try {
    duet::edge::EdgeConfig cfg;
    if (!config_path.empty()) cfg = duet::edge::EdgeConfig::from_toml_file(config_path);
    if (!model.empty()) cfg.model_path = model;

    if (styles->parsed()) {
      auto spec = duet::edge::MusicPromptSpec::from_model_dir(cfg.model_path);
      if (!spec) throw std::invalid_argument(cfg.model_path + " has no duet.json: it is not a music model");
      auto list = [](const char* name, const std::vector<std::string>& v) {
        std::printf("%s:", name);
        for (const auto& s : v) std::printf(" %s", s.c_str());
        std::printf("\n");
      };
      list("styles", spec->styles);
      list("meters", spec->meters);
      list("keys", spec->keys);
      return 0;
    }

    if (!server.empty()) cfg.server = server;
    if (!server_key.empty()) cfg.server_key = server_key;
    if (!client_key.empty()) cfg.client_key = client_key;
    if (insecure) cfg.insecure = true;
    if (!device.empty()) cfg.device = device;
    if (!dtype.empty()) cfg.dtype = dtype;
    if (!wire.empty()) cfg.wire_dtype = wire;
    if (timeout_ms >= 0) cfg.timeout_ms = timeout_ms;
    if (max_new >= 0) cfg.max_new_tokens = max_new;

    auto music = duet::edge::MusicPromptSpec::from_model_dir(cfg.model_path);
    // the model's own sampling defaults apply unless the config or a flag chose
    if (music && !cfg.sampling_set) {
      if (music->sampling.count("temperature")) cfg.sampling.temperature = music->sampling["temperature"];
      if (music->sampling.count("top_k")) cfg.sampling.top_k = static_cast<int64_t>(music->sampling["top_k"]);
      if (music->sampling.count("top_p")) cfg.sampling.top_p = music->sampling["top_p"];
    }
    if (temperature >= 0) cfg.sampling.temperature = temperature;
    if (top_k >= 0) cfg.sampling.top_k = top_k;
    if (top_p >= 0) cfg.sampling.top_p = top_p;
    if (rep >= 0) cfg.sampling.repetition_penalty = rep;
    if (seed >= 0) cfg.sampling.seed = static_cast<uint64_t>(seed);

    if (serve->parsed()) {
      if (!listen.empty()) cfg.listen = listen;
      if (!api_key.empty()) cfg.api_key = api_key;
      if (!web_dir.empty()) cfg.web_dir = web_dir;
      if (max_active >= 0) cfg.max_active = max_active;
#ifdef DUET_HAVE_SERVE
      return duet::edge::server::run_serve(cfg, local);
#else
      throw std::invalid_argument("this duet-edge was built without cpp-httplib (libcpp-httplib-dev): no serve");
#endif
    }

    const auto t_load = std::chrono::steady_clock::now();
    duet::edge::EdgeClient client(cfg, local);
    const double load_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t_load).count();
    const auto& tok = client.tokenizer();

    // the prompt: ids, text, or (music models) a header built from --style/--meter/--key
    std::vector<int32_t> ids;
    std::string prompt_text;
    if (!prompt_ids.empty()) {
      ids = parse_ids(prompt_ids);
    } else {
      prompt_text = prompt;
      if (prompt_text.empty() && music) prompt_text = music->build(style, meter, unit, key);
      if (prompt_text.empty()) throw std::invalid_argument("no prompt: give --prompt TEXT or --prompt-ids 1,2,3");
      if (!tok) throw std::invalid_argument(cfg.model_path + " has no tokenizer.json: give the prompt as --prompt-ids");
      ids = tok->encode(prompt_text, true);
    }

    auto opts = client.default_options();
    if (ignore_eos) opts.stop_ids.clear();
    std::optional<duet::tokenizer::StreamDecoder> stream;
    const bool streaming = !json && !no_stream && tok;
    if (streaming) {
      stream.emplace(*tok, true);
      std::fputs(prompt_text.c_str(), stdout);
      std::fflush(stdout);
    }
    auto res = client.generate(ids, opts, [&](int32_t id) {
      if (!streaming) return;
      std::fputs(stream->push(id).c_str(), stdout);
      std::fflush(stdout);
    });
    std::string text = tok ? tok->decode(res.tokens, true) : "";
    if (streaming) {
      std::fputs(stream->flush().c_str(), stdout);
      std::fputs("\n", stdout);
    } else if (!json) {
      std::printf("%s%s\n", prompt_text.c_str(), text.c_str());
    }
    if (!abc_out.empty()) {
      std::ofstream f(abc_out);
      if (!f) throw std::runtime_error("cannot write " + abc_out);
      f << "X:1\n" << prompt_text << text << (text.empty() || text.back() != '\n' ? "\n" : "");
      std::fprintf(stderr, "duet-edge: wrote %s\n", abc_out.c_str());
    }

    std::vector<double> decode_ms;
    for (size_t i = 1; i < res.steps.size(); ++i) decode_ms.push_back(res.steps[i].edge_ms + res.steps[i].backbone_ms);
    if (json) {
      nlohmann::json j;
      j["mode"] = local ? "local" : "split";
      j["model"] = cfg.model_path;
      j["prompt_ids"] = ids;
      j["tokens"] = res.tokens;
      j["text"] = text;
      j["stop_reason"] = res.stop_reason;
      j["load_ms"] = load_ms;
      j["resumes"] = client.resumes();
      nlohmann::json steps = nlohmann::json::array();
      for (const auto& s : res.steps)
        steps.push_back({{"positions", s.positions}, {"edge_ms", s.edge_ms}, {"round_trip_ms", s.backbone_ms},
                         {"cloud_ms", s.cloud_ms}});
      j["steps"] = steps;
      j["decode_ms_p50"] = percentile(decode_ms, 0.5);
      j["decode_ms_p99"] = percentile(decode_ms, 0.99);
      std::cout << j.dump() << "\n";
    } else {
      std::fprintf(stderr, "duet-edge: %zu tokens (%s), %s, decode p50 %.2f ms/token\n", res.tokens.size(),
                   res.stop_reason.c_str(), local ? "local" : ("via " + cfg.server).c_str(),
                   percentile(decode_ms, 0.5));
    }
    return 0;
  } catch (const duet::edge::CloudError& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-edge: %s\n", e.what());
    return 1;
  }
}
