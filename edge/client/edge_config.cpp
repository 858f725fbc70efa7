#include "edge/client/edge_config.hpp"

#include <limits>
#include <stdexcept>

#include "common/setting_file.hpp"
#include "common/spin_window.hpp"
#include "common/toml_file.hpp"

namespace duet::edge {

void check_draft_settings(const std::string& draft, int64_t draft_k) {
  if (draft != "none" && draft != "ngram")
    throw std::invalid_argument("draft '" + draft + "' is not a drafting mode; expected none or ngram");
  if (draft_k < 1 || draft_k > kMaxDraftK)
    throw std::invalid_argument("draft_k " + std::to_string(draft_k) + " is out of range; expected 1 to " +
                                std::to_string(kMaxDraftK));
}

namespace {

using E = EdgeConfig;
using settings::a_path;
using settings::above;
using settings::within;
constexpr unsigned kAll = kGenerate | kServe | kStyles, kRun = kGenerate | kServe;
constexpr double kNoMax = std::numeric_limits<double>::infinity();
bool* sampling_chosen(EdgeConfig& c) { return &c.sampling_set; }
bool* budget_chosen(EdgeConfig& c) { return &c.max_new_tokens_set; }

const std::vector<EdgeSetting> kSettings = {
    {"model", "path", "--model", "model folder (only embedding, norm, head and tokenizer are read)",
     DUET_SLOT(E, model_path), a_path(), kAll},
    {"model", "device", "--device", "edge device: cpu, cuda, cuda:N", DUET_SLOT(E, device), {}, kRun},
    {"model", "dtype", "--dtype", "edge compute dtype: fp32, fp16, bf16", DUET_SLOT(E, dtype), {}, kRun},
    {"cloud", "server", "--server", "daemon endpoint, e.g. tcp://127.0.0.1:7700", DUET_SLOT(E, server), {}, kRun},
    {"cloud", "server_key", "--server-key", "the daemon's public NAME.key to pin", DUET_SLOT(E, server_key), a_path(), kRun},
    {"cloud", "client_key", "--client-key", "this client's NAME.key_secret", DUET_SLOT(E, client_key), a_path(), kRun},
    {"cloud", "insecure", "--insecure", "talk plain TCP (the daemon must run --insecure too)", DUET_SLOT(E, insecure), {},
     kRun},
    {"cloud", "wire_dtype", "--wire-dtype", "activation dtype on the wire: fp32, fp16, bf16, int8 (per-row scales)",
     DUET_SLOT(E, wire_dtype), {}, kRun},
    {"cloud", "timeout_ms", "--timeout-ms", "give up on the daemon after this long", DUET_SLOT(E, timeout_ms),
     within(1, kNoMax, "ms"), kRun},
    {"cloud", "spin_us", "--spin-us", "poll for each reply without sleeping this long (a busy core; 0: off)",
     DUET_SLOT(E, spin_us), within(0, kMaxSpinUs, "microseconds"), kRun},
    {"cloud", "edge_blocks", "--edge-blocks",
     "keep the first K blocks here (privacy): the daemon must run --first-block K and never sees the token embeddings",
     DUET_SLOT(E, edge_blocks), {}, kRun},
    {"generate", "max_new_tokens", "-n,--max-new-tokens", "token budget (NotaGen models: characters)",
     DUET_SLOT(E, max_new_tokens), within(1, kNoMax), kGenerate, true, budget_chosen},
    {"generate", "temperature", "--temperature", "0 = greedy", DUET_SLOT(E, sampling.temperature), {}, kGenerate, true,
     sampling_chosen},
    {"generate", "top_k", "--top-k", "keep the k most likely tokens (0 = off)", DUET_SLOT(E, sampling.top_k), {},
     kGenerate, true, sampling_chosen},
    {"generate", "top_p", "--top-p", "keep the smallest set of tokens with this much probability (1 = off)",
     DUET_SLOT(E, sampling.top_p), above(0, 1), kGenerate, true, sampling_chosen},
    {"generate", "repetition_penalty", "--repetition-penalty", "1 = off", DUET_SLOT(E, sampling.repetition_penalty),
     above(0), kGenerate, true, sampling_chosen},
    {"generate", "seed", "--seed", "seed for sampling (printed and written into the tune)", DUET_SLOT(E, sampling.seed),
     {}, kGenerate},
    {"generate", "draft", "--draft",
     "several tokens per round trip: none, ngram (prompt lookup; exact for greedy and sampling, see "
     "docs/SPECULATION.md)",
     DUET_SLOT(E, draft), {}, kRun},
    {"generate", "draft_k", "--draft-k", "most draft tokens per round trip (1-32, default 16)", DUET_SLOT(E, draft_k),
     within(1, kMaxDraftK), kRun},
    {"generate", "draft_adaptive", "--draft-fixed", "always draft --draft-k tokens (default: adapt to acceptance and RTT)",
     DUET_SLOT(E, draft_adaptive), {}, kRun, false},
    {"music", "style", "--style", "music models: style of the tune (see `duet-edge styles`)", DUET_SLOT(E, style), {},
     kGenerate},
    {"music", "meter", "--meter", "music models: meter, e.g. 6/8, 3/4, C (default: the style's)", DUET_SLOT(E, meter),
     {}, kGenerate},
    {"music", "unit", "--unit", "music models: unit note length L:, e.g. 1/8 (default: the style's)", DUET_SLOT(E, unit),
     {}, kGenerate},
    {"music", "key", "--key", "music models: key, e.g. D, Ador, Em, F#m, A dorian (default: the style's)",
     DUET_SLOT(E, key), {}, kGenerate},
    {"music", "bar_constraint", "--no-constraint",
     "music models: sample without the bar constraint and repetition guard (on by default)",
     DUET_SLOT(E, bar_constraint), {}, kGenerate, false},
    {"music", "ending_push", "--no-ending-push",
     "music models: no push towards the end past the style's usual length, no clean end at a bar line before the "
     "budget runs out (on with the constraint)",
     DUET_SLOT(E, ending_push), {}, kGenerate, false},
    {"music", "max_identical_bars", "--max-identical-bars",
     "music models: the repetition guard's limit of identical bars in a row (0 = off)", DUET_SLOT(E, max_identical_bars),
     {}, kGenerate},
    {"music", "tempo", "--tempo",
     "music models: Q: beats per minute of the rhythm's beat (1/2 for a 4/4 reel, 3/8 for a jig; 0, the default: "
     "the rhythm's)",
     DUET_SLOT(E, tempo_bpm), within(0, 400, "beats per minute"), kGenerate},
    {"serve", "listen", "--listen", "HOST:PORT to serve on (default 127.0.0.1:8080; port 0: any free one)",
     DUET_SLOT(E, listen), {}, kServe},
    {"serve", "api_key", "--api-key", "require 'Authorization: Bearer KEY' (set it when listening beyond loopback)",
     DUET_SLOT(E, api_key), {}, kServe},
    {"serve", "web_dir", "--web-dir", "folder of the music page (web/, with node_modules from npm ci)",
     DUET_SLOT(E, web_dir), a_path(), kServe},
    {"serve", "max_active", "--max-active", "requests generating at once (each its own cloud session)",
     DUET_SLOT(E, max_active), within(1, kNoMax), kServe},
    {"serve", "max_body_bytes", "", "larger request bodies are refused (413) before they are read",
     DUET_SLOT(E, max_body_bytes), within(1024, kNoMax, "bytes"), kServe},
    {"serve", "allowed_origins", "--allow-origin",
     "let web pages of this origin (e.g. http://localhost:3000; * for any) call the API from a browser; repeatable "
     "(default: only the server's own pages)",
     DUET_SLOT(E, allowed_origins), settings::appended(), kServe},
};

}  // namespace

const std::vector<EdgeSetting>& edge_settings() { return kSettings; }

EdgeConfig EdgeConfig::from_toml_file(const std::string& path) {
  EdgeConfig c;
  settings::read_table(parse_toml_file(path), path, kSettings, {}, c);
  try {
    check_draft_settings(c.draft, c.draft_k);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return c;
}

}  // namespace duet::edge
