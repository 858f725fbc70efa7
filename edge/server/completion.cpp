#include "edge/server/completion.hpp"

#include <cstdio>

#include "edge/client/music_generation.hpp"

namespace duet::edge::server {

ServeContext::ServeContext(EdgeClient& c, const ServeOptions& o, GenerationOptions d)
    : client(c), opts(o), sessions(c, o.max_active), defaults(std::move(d)) {}

void check_prompt(const ServeContext& ctx, const GenerationPlan& p) {
  if (p.prompt.empty()) throw ApiError(400, "the prompt is empty", "prompt");
  const int64_t vocab = ctx.client.checkpoint().config().vocab_size;
  for (int32_t id : p.prompt)
    if (id < 0 || id >= vocab)
      throw ApiError(400, "prompt token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                              std::to_string(vocab - 1) + ")",
                     "prompt", "invalid_value");
  const int64_t limit = p.max_positions;
  if (limit > 0 && static_cast<int64_t>(p.prompt.size()) >= limit)
    throw ApiError(400, "the prompt has " + std::to_string(p.prompt.size()) + " tokens; this model and daemon allow " +
                            std::to_string(limit) + " positions in all, prompt and completion: shorten it",
                   "messages", "context_length_exceeded");
}

GenerationRequest request_from_api(const ServeContext& ctx, const ApiRequest& r) {
  const auto& tok = ctx.client.tokenizer();
  if (!r.model.empty() && r.model != ctx.model_id)
    throw ApiError(404, "the model '" + r.model + "' does not exist; this server serves '" + ctx.model_id + "'",
                   "model", "model_not_found");
  GenerationRequest g;
  if (r.chat) {
    if (!ctx.chat) throw ApiError(400, ctx.chat_error, "messages", "no_chat_template");
    std::string text;
    try {
      text = ctx.chat->render(r.messages);
    } catch (const std::invalid_argument& e) {
      throw ApiError(400, e.what(), "messages", "invalid_value");
    }
    g.prompt = tok->encode(text, /*add_special_tokens=*/false);  // the template wrote them
    if (auto eot = tok->token_to_id(ctx.chat->end_of_turn())) g.extra_stop_ids.push_back(*eot);
  } else if (r.prompt) {
    g.prompt = tok->encode(*r.prompt, /*add_special_tokens=*/true);  // as duet-edge generate --prompt
  } else {
    g.prompt = r.prompt_ids;
  }
  g.stop_strings = r.stop;
  g.overrides = r.sampling;
  return g;
}

GenerationRequest request_from_music(const ServeContext& ctx, const MusicApiRequest& m) {
  if (!ctx.music) throw ApiError(404, ctx.model_id + " is not a music model (no duet.json)", "", "not_music_model");
  GenerationRequest g;
  TuneRequest tune;  // the same bar-true sampling (constraint, guard, ending push) as duet-edge generate
  tune.options = {m.style, m.meter, m.unit, m.key};
  if (m.constraint) tune.constrain = *m.constraint;
  g.tune = tune;
  g.overrides = m.sampling;
  return g;
}

GenerationJob make_job(ServeContext& ctx, const GenerationRequest& r) {
  try {
    GenerationJob job(ctx.client, ctx.defaults, r, ctx.music ? &*ctx.music : nullptr);
    check_prompt(ctx, job.plan());
    return job;
  } catch (const music::AbcFieldError& e) {
    throw ApiError(400, e.what(), e.field(), "invalid_value");  // the option that was wrong
  }
}

GenerationOutcome run_job(ServeContext& ctx, const GenerationJob& job, GenerationSink& sink) {
  const GenerationOutcome out = job.run(ctx.sessions, sink);
  std::fprintf(stderr, "duet-edge serve: %lld prompt + %lld tokens (%s), first token %.1f ms, %.1f tokens/s\n",
               static_cast<long long>(out.prompt_tokens), static_cast<long long>(out.completion_tokens),
               to_string(out.stop), out.ttft_ms, out.decode_tok_s);
  return out;
}

ApiError to_api_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const ApiError& a) {
    return a;
  } catch (const CloudError& c) {
    return ApiError(503, std::string("the cloud daemon: ") + c.what(), "", "cloud_unavailable");
  } catch (const std::length_error& l) {
    return ApiError(400, l.what(), "", "context_length_exceeded");
  } catch (const std::invalid_argument& i) {
    return ApiError(400, i.what(), "", "invalid_value");
  } catch (const std::exception& x) {
    return ApiError(500, std::string("duet-edge: ") + x.what());
  } catch (...) {
    return ApiError(500, "duet-edge: unknown error");
  }
}

}  // namespace duet::edge::server
