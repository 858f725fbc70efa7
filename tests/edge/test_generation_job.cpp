// Issue 23: one GenerationJob for every front end of duet-edge: serve's OpenAI route, its music
// page's route and the CLI's generate make the same plan of equivalent inputs (the same defaults
// from duet.json, the same seed) and so the same tokens; the job's one stop reason gives
// finish_reason. On the bundled model (models/abc-folk), blocks in process: no daemon, a few dozen
// tokens; a prompt of ids on a fixture model without a tokenizer; a NotaGen piece on the tiny
// NotaGen fixture (the same job on a PieceRunner: a patch per round trip).
#include "../common/torch_doctest.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include <unistd.h>

#include "common/backbone.hpp"
#include "common/checkpoint.hpp"
#include "edge/cli/generate_command.hpp"
#include "edge/client/model_defaults.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/client/piece_maker.hpp"
#include "edge/generation/generation_job.hpp"
#include "edge/generation/piece_runner.hpp"
#include "edge/generation/token_runner.hpp"
#include "edge/notagen/patches.hpp"
#include "edge/server/completion.hpp"

using namespace duet::edge;
using namespace duet::edge::server;

namespace {

std::string abc_model() { return std::string(DUET_SOURCE_DIR) + "/models/abc-folk"; }

// serve's context on the bundled model, as run_serve builds it (loaded once for the file)
ServeContext& serve() {
  static EdgeConfig cfg = [] {
    EdgeConfig c;
    c.model_path = abc_model();
    apply_model_defaults(c);
    return c;
  }();
  static EdgeClient client(cfg, /*local=*/true);
  static ServeContext ctx(client, ServeOptions{}, client.default_options());
  static const bool named = [] {
    ctx.model_id = "abc-folk";
    ctx.music = MusicPromptSpec::from_model_dir(abc_model());
    return true;
  }();
  (void)named;
  return ctx;
}

struct Recorder final : GenerationSink {
  std::string text_seen;
  size_t calls = 0, cancel_at = 0;  // cancel_at: the call that returns false (0: none)
  std::optional<GenerationOutcome> end;
  bool text(const std::string& d) override {
    text_seen += d;
    return !(cancel_at && ++calls >= cancel_at);
  }
  void finish(const GenerationOutcome& o) override { end = o; }
};

// The given ids in turn, then `reason`, as the token loop ends; the options it was given kept.
struct ScriptedRunner final : TokenRunner {
  std::vector<int32_t> ids;
  std::string reason;
  std::optional<duet::GenerationOptions> seen;
  duet::GenerationResult run(const std::vector<int32_t>&, const duet::GenerationOptions& opts,
                             const duet::TokenCallback& on_token) override {
    seen = opts;
    duet::GenerationResult r;
    r.stop_reason = reason;
    try {
      for (int32_t id : ids) {
        r.tokens.push_back(id);
        on_token(id);
      }
    } catch (const StopGeneration& s) {
      r.stop_reason = s.reason;
    }
    return r;
  }
};

// duet-edge generate's config: the model's defaults under the flags (as edge_main merges them)
EdgeConfig cli_config(const std::string& model, int64_t max_new, uint64_t seed) {
  EdgeConfig c;
  c.model_path = model;
  apply_model_defaults(c);
  c.max_new_tokens = max_new, c.max_new_tokens_set = true;  // -n
  c.sampling.seed = seed;                                   // --seed
  return c;
}

GenerationJob api_job(const nlohmann::json& body) { return make_job(serve(), request_from_api(serve(), read_request(body, false))); }
GenerationJob page_job(const nlohmann::json& body) {
  return make_job(serve(), request_from_music(serve(), parse_music_request(body.dump())));
}

}  // namespace

TEST_CASE("GenerationJob: the API route and the music page make one plan of equivalent inputs, and the same tokens") {
  auto& ctx = serve();
  const auto spec = duet::music::MusicModelSpec::from_model_dir(abc_model());
  REQUIRE(spec);
  REQUIRE(spec->sampling.count("temperature"));
  const double model_temperature = spec->sampling.at("temperature");
  REQUIRE(model_temperature > 0);  // sampled: the seed matters

  // the page's form, and the API given the prompt the page's tune starts from
  const nlohmann::json form = {{"style", "oneills-jig"}, {"seed", 7}, {"max_tokens", 24}, {"constraint", false}};
  const GenerationJob page = page_job(form);
  REQUIRE(page.tune() != nullptr);
  const nlohmann::json api_body = {{"prompt", page.tune()->prompt_text()}, {"seed", 7}, {"max_tokens", 24}};
  const GenerationJob api = api_job(api_body);
  REQUIRE(api.tune() == nullptr);

  // the same plan, the tune's options aside: prompt, budget, duet.json's sampling, seed, stop ids
  GenerationPlan page_plan = page.plan();
  page_plan.tune.reset();
  DOCTEST_CHECK(page_plan == api.plan());
  DOCTEST_CHECK(api.plan().sampling.seed == 7);
  DOCTEST_CHECK(api.plan().max_new_tokens == 24);
  DOCTEST_CHECK(api.plan().sampling.temperature == doctest::Approx(model_temperature));
  DOCTEST_CHECK(api.plan().stop_ids == ctx.defaults.stop_ids);

  // defaults applied once, alike: no budget or sampling in either request -> duet.json's
  const GenerationJob page_d = page_job({{"style", "oneills-jig"}, {"constraint", false}});
  const GenerationJob api_d = api_job({{"prompt", page.tune()->prompt_text()}});
  for (const GenerationJob* j : {&page_d, &api_d}) {
    DOCTEST_CHECK(j->plan().sampling.temperature == doctest::Approx(model_temperature));
    if (spec->max_new_tokens > 0) DOCTEST_CHECK(j->plan().max_new_tokens == spec->max_new_tokens);
    DOCTEST_CHECK(j->plan().max_new_tokens == ctx.defaults.max_new_tokens);
  }

  // the same plan, the same tokens (blocks in process, through serve's sessions)
  Recorder a, p;
  const auto out_api = run_job(ctx, api, a);
  const auto out_page = run_job(ctx, page, p);
  REQUIRE(a.end);
  REQUIRE(p.end);
  REQUIRE(!out_api.tokens.empty());
  DOCTEST_CHECK(out_api.tokens == out_page.tokens);
  DOCTEST_CHECK(a.text_seen == p.text_seen);
  DOCTEST_CHECK(a.text_seen == out_api.text);
  DOCTEST_CHECK(out_api.stop == out_page.stop);
  // another seed, another tune: the seed reaches the sampler
  Recorder b;
  const auto out_other = run_job(ctx, api_job({{"prompt", page.tune()->prompt_text()}, {"seed", 8}, {"max_tokens", 24}}), b);
  DOCTEST_CHECK(out_other.tokens != out_api.tokens);
}

TEST_CASE("GenerationJob: the one stop reason reaches the sink and finish_reason") {
  auto& ctx = serve();
  const auto& tok = *ctx.client.tokenizer();
  const std::vector<int32_t> body = tok.encode("A2B c2d|e2f g3|", false);
  REQUIRE(body.size() >= 4);
  REQUIRE(!ctx.defaults.stop_ids.empty());
  const nlohmann::json prompt = {{"prompt", "X:1\n"}, {"seed", 3}, {"max_tokens", 50}, {"temperature", 0.5}};

  SUBCASE("the model's end of sequence: stop") {
    ScriptedRunner r;
    r.ids = body;
    r.ids.push_back(ctx.defaults.stop_ids[0]);
    r.reason = "eos";
    Recorder s;
    const auto out = api_job(prompt).run(r, s);
    REQUIRE(s.end);
    DOCTEST_CHECK(s.end->stop == StopReason::eos);
    DOCTEST_CHECK(std::string(finish_reason(out.stop)) == "stop");
    DOCTEST_CHECK(s.text_seen == tok.decode(body, true));
    // the plan reached the loop: budget, the request's sampling and seed
    REQUIRE(r.seen);
    DOCTEST_CHECK(r.seen->max_new_tokens == 50);
    DOCTEST_CHECK(r.seen->sampling.seed == 3);
    DOCTEST_CHECK(r.seen->sampling.temperature == doctest::Approx(0.5));
    DOCTEST_CHECK(!r.seen->logits_processor);  // no tune, no constraint
  }
  SUBCASE("the token budget: length") {
    ScriptedRunner r;
    r.ids = body;
    r.reason = "max_new_tokens";
    Recorder s;
    const auto out = api_job(prompt).run(r, s);
    DOCTEST_CHECK(out.stop == StopReason::budget);
    DOCTEST_CHECK(std::string(finish_reason(out.stop)) == "length");
    DOCTEST_CHECK(out.completion_tokens == static_cast<int64_t>(body.size()));
  }
  SUBCASE("a stop string: stop, the text cut before it") {
    ScriptedRunner r;
    r.ids = body;
    r.reason = "max_new_tokens";
    nlohmann::json with_stop = prompt;
    with_stop["stop"] = "c2";
    Recorder s;
    const auto out = api_job(with_stop).run(r, s);
    DOCTEST_CHECK(out.stop == StopReason::stop_string);
    DOCTEST_CHECK(std::string(finish_reason(out.stop)) == "stop");
    DOCTEST_CHECK(out.text == "A2B ");
    DOCTEST_CHECK(s.text_seen == out.text);
  }
  SUBCASE("a reader that goes away: cancelled, the generation ends at once") {
    ScriptedRunner r;
    r.ids = body;
    r.reason = "max_new_tokens";
    Recorder s;
    s.cancel_at = 1;
    const auto out = api_job(prompt).run(r, s);
    DOCTEST_CHECK(out.stop == StopReason::cancelled);
    DOCTEST_CHECK(out.completion_tokens < static_cast<int64_t>(body.size()));
    REQUIRE(s.end);
    DOCTEST_CHECK(s.end->stop == StopReason::cancelled);
  }
  SUBCASE("the page's tune: the bar constraint is the loop's logits processor unless turned off") {
    ScriptedRunner r;
    r.ids = body;
    r.reason = "max_new_tokens";
    Recorder s;
    (void)page_job({{"style", "oneills-jig"}, {"max_tokens", 30}}).run(r, s);
    REQUIRE(r.seen);
    DOCTEST_CHECK(static_cast<bool>(r.seen->logits_processor));
    DOCTEST_CHECK(r.seen->max_new_tokens == 30);
    (void)page_job({{"style", "oneills-jig"}, {"constraint", false}}).run(r, s);
    DOCTEST_CHECK(!r.seen->logits_processor);
  }
  SUBCASE("a tune's wrong option is refused naming it") {
    try {
      (void)page_job({{"style", "oneills-jig"}, {"key", "H"}});
      FAIL("key H was accepted");
    } catch (const ApiError& e) {
      DOCTEST_CHECK(e.status() == 400);
      DOCTEST_CHECK(e.param() == "key");
    }
  }
}

TEST_CASE("GenerationJob: duet-edge generate and the API make one plan of equivalent inputs, and the same tokens") {
  auto& ctx = serve();
  // generate --model abc-folk -n 24 --seed 7, as --prompt and as a --style tune, on its own client
  const EdgeConfig cfg = cli_config(abc_model(), 24, 7);
  EdgeClient client(cfg, /*local=*/true);
  const auto spec = duet::music::MusicModelSpec::from_model_dir(abc_model());
  REQUIRE(spec);

  duet::edge::cli::GenerateArgs tune_args;
  tune_args.music_flags = true;
  EdgeConfig tune_cfg = cfg;
  tune_cfg.style = "oneills-jig";
  tune_cfg.bar_constraint = false;  // --no-constraint
  const auto tune = duet::edge::cli::generate_tune(tune_cfg, &*spec, tune_args);
  REQUIRE(tune);
  const GenerationJob cli_tune = duet::edge::cli::generate_job(client, tune_cfg, tune_args, tune, &*spec);
  REQUIRE(cli_tune.tune() != nullptr);

  duet::edge::cli::GenerateArgs text_args;
  text_args.prompt = cli_tune.tune()->prompt_text();
  REQUIRE_FALSE(duet::edge::cli::generate_tune(cfg, &*spec, text_args));  // a --prompt is text, not a tune
  const GenerationJob cli_text = duet::edge::cli::generate_job(client, cfg, text_args, std::nullopt, &*spec);

  const GenerationJob api = api_job({{"prompt", text_args.prompt}, {"seed", 7}, {"max_tokens", 24}});
  const GenerationJob page = page_job({{"style", "oneills-jig"}, {"seed", 7}, {"max_tokens", 24}, {"constraint", false}});

  // one plan: the prompt, the budget, duet.json's sampling (the CLI's from its config, the API's
  // from serve's defaults), the seed, the stop ids
  DOCTEST_CHECK(cli_text.plan() == api.plan());
  GenerationPlan tune_plan = cli_tune.plan(), page_plan = page.plan();
  REQUIRE(tune_plan.tune);
  REQUIRE(page_plan.tune);
  DOCTEST_CHECK(tune_plan.tune->options.style == page_plan.tune->options.style);
  DOCTEST_CHECK(tune_plan.tune->constrain == page_plan.tune->constrain);
  tune_plan.tune.reset();
  page_plan.tune.reset();
  DOCTEST_CHECK(tune_plan == page_plan);
  DOCTEST_CHECK(tune_plan == cli_text.plan());
  DOCTEST_CHECK(cli_text.plan().sampling.seed == 7);
  DOCTEST_CHECK(cli_text.plan().max_new_tokens == 24);

  // the same tokens, the CLI's through its own client, the API's through serve's sessions
  ClientRunner runner(client);
  Recorder c, t, a;
  const auto out_cli = cli_text.run(runner, c);
  const auto out_tune = cli_tune.run(runner, t);
  const auto out_api = run_job(ctx, api, a);
  REQUIRE(!out_api.tokens.empty());
  DOCTEST_CHECK(out_cli.tokens == out_api.tokens);
  DOCTEST_CHECK(out_tune.tokens == out_api.tokens);
  DOCTEST_CHECK(out_cli.text == out_api.text);
  DOCTEST_CHECK(out_cli.stop == out_api.stop);
  // the rounds the --json report prints come with the outcome: one per token without drafting
  DOCTEST_CHECK(out_cli.steps.size() == out_cli.tokens.size());
  DOCTEST_CHECK(out_cli.steps.front().positions == static_cast<int64_t>(cli_text.plan().prompt.size()));
  DOCTEST_CHECK(out_cli.loop_reason == (out_cli.stop == StopReason::eos ? "eos" : "max_new_tokens"));

  // --count's next tune: the next seed, nothing else changed
  const GenerationJob next = cli_tune.with_seed(8);
  DOCTEST_CHECK(next.plan().sampling.seed == 8);
  DOCTEST_CHECK(next.tune() == cli_tune.tune());
  DOCTEST_CHECK(next.plan().prompt == cli_tune.plan().prompt);
}

TEST_CASE("GenerationJob: a prompt of ids runs on a model without a tokenizer (tokens, no text)") {
  const std::string model = std::string(DUET_FIXTURES_DIR) + "/models/llama_gqa";
  EdgeClient client(cli_config(model, 8, 3), /*local=*/true);
  REQUIRE(!client.tokenizer());
  duet::edge::cli::GenerateArgs args;
  args.prompt_ids = "1,17,42";
  const GenerationJob job = duet::edge::cli::generate_job(client, cli_config(model, 8, 3), args, std::nullopt, nullptr);
  DOCTEST_CHECK(job.plan().prompt == std::vector<int32_t>{1, 17, 42});
  ClientRunner runner(client);
  Recorder s;
  const auto out = job.run(runner, s);
  REQUIRE(s.end);
  DOCTEST_CHECK(!out.tokens.empty());
  DOCTEST_CHECK(out.tokens.size() <= 8);
  DOCTEST_CHECK(out.text.empty());
  DOCTEST_CHECK(s.text_seen.empty());
  DOCTEST_CHECK(out.steps.size() == out.tokens.size());
  // the same seed, the same tokens (the loop's own, without the job)
  duet::GenerationOptions g = client.default_options();
  g.sampling.seed = 3;
  DOCTEST_CHECK(client.generate({1, 17, 42}, g).tokens == out.tokens);

  // text needs the tokenizer: --prompt and stop strings are refused with a sentence
  args.prompt_ids.clear();
  args.prompt = "hello";
  DOCTEST_CHECK_THROWS_AS(duet::edge::cli::generate_job(client, cli_config(model, 8, 3), args, std::nullopt, nullptr),
                          std::invalid_argument);
  GenerationRequest r;
  r.prompt = {1, 17, 42};
  r.stop_strings = {"x"};
  DOCTEST_CHECK_THROWS_AS(GenerationJob(client, client.default_options(), r), std::invalid_argument);
}

namespace {

std::string notagen_tiny() { return std::string(DUET_FIXTURES_DIR) + "/notagen/tiny"; }
const std::string kPiecePrompt = "%Classical\n%Beethoven, Ludwig van\n%Keyboard\n";  // its duet.json's defaults

// A piece's text in the given chunks (one a patch), then `reason`, as the piece loop ends; the
// options it was given kept.
struct ScriptedPieces final : PieceRunner {
  std::vector<std::string> chunks;
  std::string reason;
  std::optional<duet::notagen::PieceOptions> seen;
  std::string prompt_seen;
  duet::notagen::PieceResult run(const std::string& prompt, const duet::notagen::PieceOptions& o,
                                 const duet::notagen::TextCallback& on_text) override {
    seen = o;
    prompt_seen = prompt;
    duet::notagen::PieceResult r;
    for (const auto& c : chunks) {
      r.text += c;
      r.patches.emplace_back(16, duet::notagen::kPad);
      r.steps.push_back({r.steps.empty() ? 4 : 1, 16, 1.0, 2.0, -1.0});
      on_text(c);
    }
    r.stop_reason = reason;
    return r;
  }
};

}  // namespace

TEST_CASE("GenerationJob: a NotaGen piece from duet-edge generate's flags == the piece loop's own, for a seed") {
  // generate --model tiny --local --max-patches 12 --seed 5 (duet.json's sampling: NotaGen's)
  EdgeConfig cfg;
  cfg.model_path = notagen_tiny();
  apply_model_defaults(cfg);
  cfg.sampling.seed = 5;
  duet::edge::cli::GenerateArgs args;
  args.max_patches = 12;
  const PieceRequest req = duet::edge::cli::generate_piece(cfg, args);
  PieceClient client(cfg, /*local=*/true);
  const GenerationJob job = duet::edge::cli::piece_job(client, cfg, args, req);
  REQUIRE(job.piece() != nullptr);
  REQUIRE(job.tune() == nullptr);
  DOCTEST_CHECK(job.piece()->prompt_text() == kPiecePrompt);
  const GenerationPlan& plan = job.plan();
  DOCTEST_CHECK(plan.prompt == std::vector<int32_t>(kPiecePrompt.begin(), kPiecePrompt.end()));
  DOCTEST_CHECK(plan.sampling.seed == 5);
  DOCTEST_CHECK(plan.sampling.temperature == doctest::Approx(1.2));
  DOCTEST_CHECK(plan.sampling.top_k == 9);
  DOCTEST_CHECK(plan.sampling.top_p == doctest::Approx(0.9));
  DOCTEST_CHECK(plan.sampling.temperature_last);  // duet.json sampling_order "notagen"
  DOCTEST_CHECK(plan.max_new_tokens == 102400);    // duet.json's max_chars
  DOCTEST_CHECK(plan.stop_ids.empty());

  ClientPieceRunner runner(client);
  Recorder sink;
  const auto out = job.run(runner, sink);
  REQUIRE(sink.end);

  // the previous path's loop: PieceGenerator on the blocks in process, its options written out
  duet::Checkpoint ck(notagen_tiny());
  duet::notagen::PieceGenerator gen(ck, duet::LoadOptions{});
  duet::LocalBackbone bb(ck, duet::LoadOptions{}, ck.config().max_positions);
  duet::notagen::PieceOptions po;
  // temperature, top-k, top-p, no repetition penalty, the seed, temperature last (NotaGen's order)
  po.sampling = {1.2, 9, 0.9, 1.0, 5, true};
  po.max_patches = 12;
  const auto want = gen.generate(bb, kPiecePrompt, po);
  REQUIRE(!want.text.empty());
  DOCTEST_CHECK(out.tokens == std::vector<int32_t>(want.text.begin(), want.text.end()));
  DOCTEST_CHECK(out.loop_reason == want.stop_reason);
  DOCTEST_CHECK(out.stop == stop_reason_of(want.stop_reason));
  DOCTEST_CHECK(out.patches == static_cast<int64_t>(want.patches.size()));
  DOCTEST_CHECK(out.steps.size() == want.steps.size());  // one round per patch
  DOCTEST_CHECK(out.cuts == want.cuts);
  // the text delivered as the .abc file has it: the stream markers out
  DOCTEST_CHECK(sink.text_seen == duet::notagen::strip_stream_markers(want.text));
  DOCTEST_CHECK(out.text == sink.text_seen);
  DOCTEST_CHECK(sink.end->stop == out.stop);

  // another seed, another piece; the same seed again, the same piece
  Recorder s6, s5;
  DOCTEST_CHECK(job.with_seed(6).run(runner, s6).tokens != out.tokens);
  DOCTEST_CHECK(job.with_seed(5).run(runner, s5).tokens == out.tokens);
}

TEST_CASE("GenerationJob: a piece's stop reasons show as a token model's; its options reach the loop") {
  EdgeConfig cfg;
  cfg.model_path = notagen_tiny();
  apply_model_defaults(cfg);
  PieceClient client(cfg, /*local=*/true);
  duet::edge::cli::GenerateArgs args;
  args.max_patches = 7;
  args.patch_context = 8;
  args.max_new_tokens = 50;  // -n: characters
  const GenerationJob job = duet::edge::cli::piece_job(client, cfg, args, duet::edge::cli::generate_piece(cfg, args));
  // NotaGen-X's stream markers are the model's only: the sink never sees them
  const std::vector<std::string> chunks = {"[r:0/1]abc", "|\n[r:1", "/0]de|\n"};

  SUBCASE("the EOS patch: eos, finish_reason stop") {
    ScriptedPieces r;
    r.chunks = chunks;
    r.reason = "eos";
    Recorder s;
    const auto out = job.run(r, s);
    DOCTEST_CHECK(out.stop == StopReason::eos);
    DOCTEST_CHECK(std::string(to_string(out.stop)) == "eos");
    DOCTEST_CHECK(std::string(finish_reason(out.stop)) == "stop");
    DOCTEST_CHECK(s.text_seen == "abc|\nde|\n");
    DOCTEST_CHECK(out.text == s.text_seen);
    DOCTEST_CHECK(out.tokens.size() == std::string("[r:0/1]abc|\n[r:1/0]de|\n").size());
    DOCTEST_CHECK(out.patches == 3);
    // the plan reached the loop: -n as characters, --max-patches, --patch-context, the seed
    REQUIRE(r.seen);
    DOCTEST_CHECK(r.prompt_seen == kPiecePrompt);
    DOCTEST_CHECK(r.seen->max_chars == 50);
    DOCTEST_CHECK(r.seen->max_patches == 7);
    DOCTEST_CHECK(r.seen->context == 8);
    DOCTEST_CHECK(r.seen->sampling.seed == job.plan().sampling.seed);
    DOCTEST_CHECK(!r.seen->filter);  // no bar constraint for a period-composer-instrumentation model
  }
  for (const char* budget : {"max_patches", "max_chars"}) {
    CAPTURE(std::string(budget));
    ScriptedPieces r;
    r.chunks = chunks;
    r.reason = budget;
    Recorder s;
    const auto out = job.run(r, s);
    // the token budget's reason, name and finish_reason, as a token model's -n gives them
    DOCTEST_CHECK(out.stop == StopReason::budget);
    DOCTEST_CHECK(std::string(to_string(out.stop)) == "max_new_tokens");
    DOCTEST_CHECK(std::string(finish_reason(out.stop)) == "length");
    DOCTEST_CHECK(out.loop_reason == budget);
  }
  SUBCASE("a reader that goes away: cancelled, the text so far kept") {
    ScriptedPieces r;
    r.chunks = chunks;
    r.reason = "eos";
    Recorder s;
    s.cancel_at = 1;
    const auto out = job.run(r, s);
    DOCTEST_CHECK(out.stop == StopReason::cancelled);
    DOCTEST_CHECK(s.text_seen == "abc");
    DOCTEST_CHECK(out.tokens.size() == std::string("[r:0/1]abc").size());
    REQUIRE(s.end);
    DOCTEST_CHECK(s.end->stop == StopReason::cancelled);
  }
  SUBCASE("the other kind of runner, or of request, is refused") {
    ScriptedRunner tokens;
    Recorder s;
    DOCTEST_CHECK_THROWS_AS(job.run(tokens, s), std::logic_error);
    GenerationRequest r;
    r.piece = PieceRequest{};
    r.prompt = {1, 2};
    DOCTEST_CHECK_THROWS_AS(GenerationJob(client, client.default_options(), r), std::invalid_argument);
    GenerationRequest api = request_from_api(serve(), read_request({{"prompt", "X:1\n"}}, false));
    api.piece = PieceRequest{};
    DOCTEST_CHECK_THROWS_AS(make_job(serve(), api), std::invalid_argument);
  }
}

TEST_CASE("PieceMaker: --continue keeps the file's title and body, the .abc without stream markers") {
  const auto dir = std::filesystem::temp_directory_path() / ("duet-piece-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "opening.abc").string();
  {
    std::ofstream f(path);
    f << "X:1\nT:Opening\n%Romantic\n%Chopin, Frederic\n%Keyboard\nL:1/8\nM:3/4\nK:Ab\n[r:0/1]|:ABcd efga|\n";
  }
  PieceRequest req;
  req.continue_path = path;
  const PieceMaker maker(notagen_tiny(), req);
  DOCTEST_CHECK(maker.title() == "Opening");
  DOCTEST_CHECK(maker.prompt_text() == "%Romantic\n%Chopin, Frederic\n%Keyboard\nL:1/8\nM:3/4\nK:Ab\n[r:0/1]|:ABcd efga|\n");
  const std::string head = maker.header(1, 4, /*local=*/true);
  DOCTEST_CHECK(head == "X:1\nT:Opening (duet seed 4)\n% duet-edge: seed 4, notagen, local\n");
  DOCTEST_CHECK(maker.abc(head, "[r:1/0]cd|") ==
                head + "%Romantic\n%Chopin, Frederic\n%Keyboard\nL:1/8\nM:3/4\nK:Ab\n|:ABcd efga|\ncd|\n");
  // options the prompt form does not take, refused with a sentence before anything is loaded
  req.period = "Baroque";
  DOCTEST_CHECK_THROWS_WITH_AS(PieceMaker(notagen_tiny(), req), doctest::Contains("--continue takes the prompt"),
                               std::invalid_argument);
  std::filesystem::remove_all(dir);
}
