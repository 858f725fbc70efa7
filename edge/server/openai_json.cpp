#include "edge/server/openai_json.hpp"

#include <cmath>

#include "edge/client/stop_reason.hpp"
#include <random>

namespace duet::edge::server {

using nlohmann::json;

ApiError::ApiError(int status, const std::string& message, const std::string& param, const std::string& code)
    : std::runtime_error(message), status_(status), param_(param), code_(code) {}

std::string ApiError::type() const {
  switch (status_) {
    case 401: return "authentication_error";
    case 404: return "not_found_error";
    default: return status_ >= 500 ? "server_error" : "invalid_request_error";
  }
}

std::string json_text(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string brief(const json& v) {
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  std::string t = json_text(v);  // a scalar: no recursion
  if (t.size() > 40) t = t.substr(0, 37) + "...";
  return t;
}

void check_json_depth(const std::string& body, size_t max_depth) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        throw ApiError(400, "the request body nests arrays and objects deeper than " + std::to_string(max_depth) +
                                " levels");
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
}

json parse_body(const std::string& body) {
  check_json_depth(body, kMaxJsonDepth);
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e400
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

json ApiError::body() const {
  json e = {{"message", what()}, {"type", type()}};
  e["param"] = param_.empty() ? json(nullptr) : json(param_);
  e["code"] = code_.empty() ? json(nullptr) : json(code_);
  return {{"error", e}};
}

namespace {

[[noreturn]] void bad(const std::string& param, const std::string& msg) {
  throw ApiError(400, msg, param, "invalid_value");
}

std::optional<double> number(const json& j, const char* name, double lo, double hi) {
  if (!j.contains(name) || j[name].is_null()) return std::nullopt;
  if (!j[name].is_number()) bad(name, std::string("'") + name + "' must be a number");
  const double v = j[name].get<double>();
  if (!std::isfinite(v) || v < lo || v > hi)
    bad(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                  ", got " + brief(j[name]));
  return v;
}

std::optional<int64_t> integer(const json& j, const char* name, int64_t lo, int64_t hi) {
  if (!j.contains(name) || j[name].is_null()) return std::nullopt;
  if (!j[name].is_number_integer()) bad(name, std::string("'") + name + "' must be an integer");
  const auto v = j[name].get<int64_t>();
  if (v < lo || v > hi)
    bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                  ", got " + std::to_string(v));
  return v;
}

// A field that duet accepts only at its neutral value.
void neutral_only(const json& j, const char* name, const json& neutral, const std::string& why) {
  if (!j.contains(name) || j[name].is_null() || j[name] == neutral) return;
  if (neutral.is_boolean() && j[name].is_number() && j[name].get<double>() == 0) return;  // logprobs: 0
  throw ApiError(400, std::string("'") + name + "' is not supported by duet: " + why, name, "unsupported_parameter");
}

std::vector<int32_t> token_ids(const json& a, const char* param) {
  std::vector<int32_t> ids;
  for (const auto& v : a) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      bad(param, std::string("'") + param + "' holds a token id that is not a non-negative integer: " + v.dump());
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return ids;
}

void read_prompt(const json& j, ApiRequest& r) {
  if (!j.contains("prompt") || j["prompt"].is_null()) bad("prompt", "'prompt' is required");
  const json& p = j["prompt"];
  auto one = [&](const json& v) {
    if (v.is_string()) {
      r.prompt = v.get<std::string>();
    } else if (v.is_array() && !v.empty() && v[0].is_number()) {
      r.prompt_ids = token_ids(v, "prompt");
    } else {
      bad("prompt", "'prompt' must be a string or an array of token ids");
    }
  };
  if (p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array())) {
    if (p.size() != 1)
      throw ApiError(400, "duet serves one prompt per request; 'prompt' holds " + std::to_string(p.size()),
                     "prompt", "unsupported_parameter");
    one(p[0]);
  } else {
    one(p);
  }
  if (!r.prompt && r.prompt_ids.empty()) bad("prompt", "'prompt' is empty");
}

void read_messages(const json& j, ApiRequest& r) {
  if (!j.contains("messages") || !j["messages"].is_array() || j["messages"].empty())
    bad("messages", "'messages' must be a non-empty array of {role, content}");
  for (size_t i = 0; i < j["messages"].size(); ++i) {
    const json& m = j["messages"][i];
    const std::string where = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) bad(where + ".role", where + " has no role");
    ChatMessage msg;
    msg.role = m["role"].get<std::string>();
    if (msg.role == "developer") msg.role = "system";  // OpenAI's newer name for it
    if (msg.role != "system" && msg.role != "user" && msg.role != "assistant")
      throw ApiError(400, where + ".role '" + msg.role + "' is not supported: duet serves system, user and assistant",
                     where + ".role", "unsupported_parameter");
    const json c = m.contains("content") ? m["content"] : json(nullptr);
    if (c.is_string()) {
      msg.content = c.get<std::string>();
    } else if (c.is_array()) {
      for (const auto& part : c) {
        if (!part.is_object() || !part.contains("type") || part["type"] != "text" || !part.contains("text") || !part["text"].is_string())
          throw ApiError(400, where + ".content: only text parts are supported", where + ".content",
                         "unsupported_parameter");
        msg.content += part["text"].get<std::string>();
      }
    } else {
      bad(where + ".content", where + ".content must be a string or an array of text parts");
    }
    r.messages.push_back(std::move(msg));
  }
}

}  // namespace

duet::edge::GenerationOverrides read_sampling(const json& j) {
  duet::edge::GenerationOverrides o;
  o.max_new_tokens = integer(j, "max_tokens", 1, 1 << 30);
  if (auto m = integer(j, "max_completion_tokens", 1, 1 << 30)) o.max_new_tokens = m;
  o.temperature = number(j, "temperature", 0, 2);
  o.top_p = number(j, "top_p", 0, 1);
  if (o.top_p && *o.top_p <= 0) bad("top_p", "'top_p' must be above 0");
  o.top_k = integer(j, "top_k", 0, 1 << 30);
  o.repetition_penalty = number(j, "repetition_penalty", 1e-6, 100);
  if (auto s = integer(j, "seed", INT64_MIN, INT64_MAX)) o.seed = static_cast<uint64_t>(*s);
  return o;
}

ApiRequest parse_request(const std::string& body, bool chat) { return read_request(parse_body(body), chat); }

ApiRequest read_request(const json& j, bool chat) {
  ApiRequest r;
  r.chat = chat;
  if (j.contains("model") && !j["model"].is_null()) {
    if (!j["model"].is_string()) bad("model", "'model' must be a string");
    r.model = j["model"].get<std::string>();
  }
  if (chat)
    read_messages(j, r);
  else
    read_prompt(j, r);

  if (j.contains("stream") && !j["stream"].is_null()) {
    if (!j["stream"].is_boolean()) bad("stream", "'stream' must be true or false");
    r.stream = j["stream"].get<bool>();
  }
  if (j.contains("stream_options") && !j["stream_options"].is_null()) {
    const json& so = j["stream_options"];
    if (!so.is_object()) bad("stream_options", "'stream_options' must be an object");
    if (so.contains("include_usage") && !so["include_usage"].is_null()) {
      if (!so["include_usage"].is_boolean())
        bad("stream_options.include_usage", "'stream_options.include_usage' must be true or false");
      r.include_usage = so["include_usage"].get<bool>();
    }
  }

  r.sampling = read_sampling(j);

  if (j.contains("stop") && !j["stop"].is_null()) {
    const json& s = j["stop"];
    if (s.is_string()) {
      r.stop.push_back(s.get<std::string>());
    } else if (s.is_array() && s.size() <= 4) {
      for (const auto& v : s) {
        if (!v.is_string()) bad("stop", "'stop' must be a string or an array of up to 4 strings");
        r.stop.push_back(v.get<std::string>());
      }
    } else {
      bad("stop", "'stop' must be a string or an array of up to 4 strings");
    }
    for (const auto& s1 : r.stop)
      if (s1.empty()) bad("stop", "'stop' strings must not be empty");
  }

  if (auto n = integer(j, "n", 1, 1 << 30); n && *n != 1)
    throw ApiError(400, "duet generates one choice per request: 'n' must be 1", "n", "unsupported_parameter");
  if (auto n = integer(j, "best_of", 1, 1 << 30); n && *n != 1)
    throw ApiError(400, "'best_of' must be 1: duet generates one choice per request", "best_of",
                   "unsupported_parameter");
  neutral_only(j, "echo", false, "the reply holds the completion only");
  neutral_only(j, "logprobs", false, "duet does not return log probabilities");
  neutral_only(j, "top_logprobs", 0, "duet does not return log probabilities");
  neutral_only(j, "suffix", "", "insertion is not supported");
  neutral_only(j, "presence_penalty", 0, "use duet's 'repetition_penalty' instead");
  neutral_only(j, "frequency_penalty", 0, "use duet's 'repetition_penalty' instead");
  neutral_only(j, "logit_bias", json::object(), "logit bias is not supported");
  neutral_only(j, "tools", json::array(), "tool calls are not supported");
  neutral_only(j, "functions", json::array(), "function calls are not supported");
  if (j.contains("tool_choice") && !j["tool_choice"].is_null() && j["tool_choice"] != "none")
    throw ApiError(400, "'tool_choice' is not supported by duet: tool calls are not supported", "tool_choice",
                   "unsupported_parameter");
  if (j.contains("response_format") && !j["response_format"].is_null() &&
      !(j["response_format"].is_object() && j["response_format"].contains("type") &&
        j["response_format"]["type"] == "text"))
    throw ApiError(400, "'response_format' is not supported by duet beyond {\"type\": \"text\"}", "response_format",
                   "unsupported_parameter");
  return r;
}

std::string finish_reason(const std::string& stop_reason) {
  return duet::edge::finish_reason(duet::edge::stop_reason_of(stop_reason));
}

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.prompt_tokens + u.completion_tokens}};
}

json completion_body(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                     const std::string& finish, const Usage& u) {
  return {{"id", id},
          {"object", "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({{{"index", 0}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", finish}}})},
          {"usage", usage_json(u)}};
}

json chat_body(const std::string& id, int64_t created, const std::string& model, const std::string& text,
               const std::string& finish, const Usage& u) {
  json msg = {{"role", "assistant"}, {"content", text}};
  return {{"id", id},
          {"object", "chat.completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array({{{"index", 0}, {"message", msg}, {"logprobs", nullptr}, {"finish_reason", finish}}})},
          {"usage", usage_json(u)}};
}

json completion_chunk(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                      const std::string& finish) {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish.empty() ? json(nullptr) : json(finish);
  return {{"id", id}, {"object", "text_completion"}, {"created", created}, {"model", model},
          {"choices", json::array({choice})}};
}

json chat_chunk(const std::string& id, int64_t created, const std::string& model, const std::string& text,
                const std::string& finish, bool first) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (!text.empty() || first) delta["content"] = text;
  json choice = {{"index", 0}, {"delta", delta}, {"logprobs", nullptr}};
  choice["finish_reason"] = finish.empty() ? json(nullptr) : json(finish);
  return {{"id", id}, {"object", "chat.completion.chunk"}, {"created", created}, {"model", model},
          {"choices", json::array({choice})}};
}

json usage_chunk(bool chat, const std::string& id, int64_t created, const std::string& model, const Usage& u) {
  return {{"id", id},
          {"object", chat ? "chat.completion.chunk" : "text_completion"},
          {"created", created},
          {"model", model},
          {"choices", json::array()},
          {"usage", usage_json(u)}};
}

json models_body(const std::string& model, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "duet"}}})}};
}

std::string new_completion_id(bool chat) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx%08x", static_cast<unsigned long long>(rng()),
                static_cast<unsigned>(rng() & 0xffffffffu));
  return std::string(chat ? "chatcmpl-" : "cmpl-") + buf;
}

}  // namespace duet::edge::server
