#pragma once
// One request's generation, shared by the OpenAI routes and the music page: the prompt and
// options checked and completed from the request, then tokens turned into text deltas (stop
// strings applied) and handed to the caller as they come. A caller that returns false (its
// reader went away) ends the generation at once, and with it the request's cloud session.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "edge/server/openai_json.hpp"
#include "edge/server/serve_context.hpp"

namespace duet::edge::server {

struct PreparedRequest {
  std::vector<int32_t> prompt;
  GenerationOptions opts;
  std::vector<std::string> stops;
  std::shared_ptr<bool> ended_by_rule;  // a tune's ending push sets it (TuneSteering); may be null
};

// From an OpenAI request: the chat template or the prompt encoded, sampling and budget from the
// request over the defaults (no seed: a random one). Throws ApiError.
PreparedRequest prepare(const ServeContext& ctx, const ApiRequest& r);
// The common part: a prompt's ids checked against the vocabulary and the context length.
void check_prompt(const ServeContext& ctx, const PreparedRequest& p);

struct CompletionResult {
  std::string text;
  std::string stop_reason;  // to_string(StopReason): eos, ending_rule, stop, max_new_tokens, ...
  Usage usage;
  double ttft_ms = 0, decode_tok_s = 0;
};

using TextSink = std::function<bool(const std::string& delta)>;
CompletionResult run_completion(ServeContext& ctx, const PreparedRequest& p, const TextSink& on_text = nullptr);

// An exception as OpenAI's error object with its HTTP status.
ApiError to_api_error(const std::exception_ptr& e);

}  // namespace duet::edge::server
