#pragma once
// OpenAI's JSON, both ways: a /v1/completions or /v1/chat/completions body read into an
// ApiRequest (every field checked; what duet cannot do is refused with OpenAI's error object,
// naming the parameter), and the reply bodies and stream chunks built from a generation.
//
// Accepted: model (any name; the reply names the model served), prompt (a string, or token ids;
// one prompt), messages (roles system/user/assistant, content a string or text parts),
// max_tokens / max_completion_tokens, temperature, top_p, stop (a string or up to 4), seed,
// n = 1, stream, stream_options.include_usage; duet's own: top_k, repetition_penalty.
// Ignored: user, store, metadata, service_tier, parallel_tool_calls, and unknown fields.
// Refused unless neutral: n/best_of > 1, echo, logprobs, top_logprobs, suffix,
// presence_penalty/frequency_penalty other than 0 (use repetition_penalty), logit_bias,
// tools/functions, response_format other than text.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge/generation/generation_request.hpp"

namespace duet::edge::server {

// An error as OpenAI sends it: {"error": {"message", "type", "param", "code"}} with an HTTP status.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, const std::string& param = "", const std::string& code = "");
  int status() const { return status_; }
  const std::string& param() const { return param_; }
  const std::string& code() const { return code_; }
  std::string type() const;  // invalid_request_error, authentication_error, not_found_error, server_error
  nlohmann::json body() const;

 private:
  int status_;
  std::string param_, code_;
};

struct ChatMessage {
  std::string role;  // system, user, assistant
  std::string content;
};

struct ApiRequest {
  bool chat = false;
  std::string model;
  std::optional<std::string> prompt;            // completions: text
  std::vector<int32_t> prompt_ids;              // completions: token ids
  std::vector<ChatMessage> messages;            // chat
  bool stream = false;
  bool include_usage = false;                   // stream_options.include_usage
  std::vector<std::string> stop;
  // max_tokens / max_completion_tokens, temperature, top_p, top_k, repetition_penalty, seed: the
  // job's overrides as they are (read_sampling)
  duet::edge::GenerationOverrides sampling;
};

// A request body as JSON: at most kMaxJsonDepth levels of arrays/objects (checked before
// parsing: deeper bodies are refused, never walked), valid JSON (numbers within double's range),
// an object. Throws ApiError 400 otherwise.
inline constexpr size_t kMaxJsonDepth = 64;
nlohmann::json parse_body(const std::string& body);
void check_json_depth(const std::string& body, size_t max_depth);

// Throws ApiError (status 400) naming the parameter that is wrong.
ApiRequest parse_request(const std::string& body, bool chat);
ApiRequest read_request(const nlohmann::json& body, bool chat);  // the same, parsed already
// A body's budget and sampling fields (max_tokens / max_completion_tokens, temperature, top_p,
// top_k, repetition_penalty, seed), checked: the OpenAI routes and the music page read them with
// this one reader. Throws ApiError 400 naming the field.
duet::edge::GenerationOverrides read_sampling(const nlohmann::json& body);

// JSON as text for a reply: invalid UTF-8 in strings is replaced (U+FFFD), never thrown.
std::string json_text(const nlohmann::json& j);
// A value for an error message: a scalar's text (cut at 40 characters), or "an array"/"an
// object" (never a nested value's whole text).
std::string brief(const nlohmann::json& v);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// A stop reason's name (edge/client/stop_reason.hpp's to_string) as OpenAI's finish_reason; the
// routes map the StopReason itself (duet::edge::finish_reason), this is for names read back.
std::string finish_reason(const std::string& stop_reason);

nlohmann::json usage_json(const Usage& u);
// Whole replies.
nlohmann::json completion_body(const std::string& id, int64_t created, const std::string& model,
                               const std::string& text, const std::string& finish, const Usage& u);
nlohmann::json chat_body(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                         const std::string& finish, const Usage& u);
// Stream chunks: text (and, chat, the role on the first one); finish empty while generating.
nlohmann::json completion_chunk(const std::string& id, int64_t created, const std::string& model,
                                const std::string& text, const std::string& finish);
nlohmann::json chat_chunk(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                          const std::string& finish, bool first);
// The last chunk of a stream with stream_options.include_usage: no choices, the usage.
nlohmann::json usage_chunk(bool chat, const std::string& id, int64_t created, const std::string& model,
                           const Usage& u);
nlohmann::json models_body(const std::string& model, int64_t created);

// A fresh id: "cmpl-" or "chatcmpl-" and 24 random hex digits.
std::string new_completion_id(bool chat);

}  // namespace duet::edge::server
