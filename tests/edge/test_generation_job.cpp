// Issue 23: one GenerationJob for every front end of duet-edge serve. The OpenAI route and the
// music page's route make the same plan of equivalent inputs (the same defaults from duet.json,
// the same seed) and so the same tokens; the job's one stop reason gives finish_reason. On the
// bundled model (models/abc-folk), blocks in process: no daemon, a few dozen tokens.
#include "../common/torch_doctest.hpp"

#include <nlohmann/json.hpp>

#include <optional>

#include "edge/client/model_defaults.hpp"
#include "edge/client/music_generation.hpp"
#include "edge/generation/generation_job.hpp"
#include "edge/generation/token_runner.hpp"
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
