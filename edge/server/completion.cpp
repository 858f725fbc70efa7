#include "edge/server/completion.hpp"

#include <chrono>
#include <cstdio>
#include <random>

#include "edge/client/stop_reason.hpp"
#include "edge/server/text_stream.hpp"

namespace duet::edge::server {

namespace {
double ms_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
}  // namespace

ServeContext::ServeContext(EdgeClient& c, const ServeOptions& o, GenerationOptions d)
    : client(c), opts(o), sessions(c, o.max_active), defaults(std::move(d)) {}

void check_prompt(const ServeContext& ctx, const PreparedRequest& p) {
  if (p.prompt.empty()) throw ApiError(400, "the prompt is empty", "prompt");
  const int64_t vocab = ctx.client.checkpoint().config().vocab_size;
  for (int32_t id : p.prompt)
    if (id < 0 || id >= vocab)
      throw ApiError(400, "prompt token id " + std::to_string(id) + " is outside the vocabulary (0-" +
                              std::to_string(vocab - 1) + ")",
                     "prompt", "invalid_value");
  const int64_t limit = p.opts.max_positions;
  if (limit > 0 && static_cast<int64_t>(p.prompt.size()) >= limit)
    throw ApiError(400, "the prompt has " + std::to_string(p.prompt.size()) + " tokens; this model and daemon allow " +
                            std::to_string(limit) + " positions in all, prompt and completion: shorten it",
                   "messages", "context_length_exceeded");
}

PreparedRequest prepare(const ServeContext& ctx, const ApiRequest& r) {
  const auto& tok = ctx.client.tokenizer();
  if (!r.model.empty() && r.model != ctx.model_id)
    throw ApiError(404, "the model '" + r.model + "' does not exist; this server serves '" + ctx.model_id + "'",
                   "model", "model_not_found");
  PreparedRequest p;
  p.opts = ctx.defaults;
  if (r.chat) {
    if (!ctx.chat) throw ApiError(400, ctx.chat_error, "messages", "no_chat_template");
    std::string text;
    try {
      text = ctx.chat->render(r.messages);
    } catch (const std::invalid_argument& e) {
      throw ApiError(400, e.what(), "messages", "invalid_value");
    }
    p.prompt = tok->encode(text, /*add_special_tokens=*/false);  // the template wrote them
    if (auto eot = tok->token_to_id(ctx.chat->end_of_turn())) p.opts.stop_ids.push_back(*eot);
  } else if (r.prompt) {
    p.prompt = tok->encode(*r.prompt, /*add_special_tokens=*/true);  // as duet-edge generate --prompt
  } else {
    p.prompt = r.prompt_ids;
  }
  p.stops = r.stop;
  if (r.max_tokens) p.opts.max_new_tokens = *r.max_tokens;
  auto& s = p.opts.sampling;
  if (r.temperature) s.temperature = *r.temperature;
  if (r.top_p) s.top_p = *r.top_p;
  if (r.top_k) s.top_k = *r.top_k;
  if (r.repetition_penalty) s.repetition_penalty = *r.repetition_penalty;
  s.seed = r.seed ? *r.seed : std::random_device{}();
  check_prompt(ctx, p);
  return p;
}

CompletionResult run_completion(ServeContext& ctx, const PreparedRequest& p, const TextSink& on_text) {
  TextStream text(*ctx.client.tokenizer(), p.stops);
  const auto t0 = std::chrono::steady_clock::now();
  auto t_first = t0;
  size_t n = 0;
  auto res = ctx.sessions.run(p.prompt, p.opts, [&](int32_t id) {
    if (n++ == 0) t_first = std::chrono::steady_clock::now();
    const std::string delta = text.push(id);
    if (!delta.empty() && on_text && !on_text(delta)) throw StopGeneration{"cancelled"};
    if (text.stopped()) throw StopGeneration{"stop"};
  });
  const auto t_end = std::chrono::steady_clock::now();
  if (res.stop_reason != "cancelled") {
    const std::string rest = text.finish();
    if (!rest.empty() && on_text) on_text(rest);
  }
  CompletionResult out;
  out.text = text.text();
  out.stop_reason = to_string(stop_reason_of(res.stop_reason, p.ended_by_rule && *p.ended_by_rule));
  out.usage = {static_cast<int64_t>(p.prompt.size()), static_cast<int64_t>(res.tokens.size())};
  out.ttft_ms = ms_between(t0, t_first);
  if (res.tokens.size() > 1) out.decode_tok_s = (res.tokens.size() - 1) / (ms_between(t_first, t_end) / 1000.0);
  std::fprintf(stderr, "duet-edge serve: %lld prompt + %lld tokens (%s), first token %.1f ms, %.1f tokens/s\n",
               static_cast<long long>(out.usage.prompt_tokens), static_cast<long long>(out.usage.completion_tokens),
               out.stop_reason.c_str(), out.ttft_ms, out.decode_tok_s);
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
