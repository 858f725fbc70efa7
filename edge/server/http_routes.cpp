#include "edge/server/http_routes.hpp"

#include <httplib.h>

#include <chrono>
#include <stdexcept>

#include "edge/server/completion.hpp"
#include "edge/server/music_page.hpp"
#include "edge/server/http_reply.hpp"
#include "edge/server/request_guard.hpp"

namespace duet::edge::server {

using nlohmann::json;

namespace {

// A whole reply: the text is the outcome's, nothing to write as it comes.
struct WholeSink final : GenerationSink {
  bool text(const std::string&) override { return true; }
  void finish(const GenerationOutcome&) override {}
};

// One OpenAI completion route (chat or not), streaming or whole.
void completion_route(ServeContext& ctx, bool chat, const httplib::Request& req, httplib::Response& res) {
  try {
    check_api_key(ctx, req.get_header_value("Authorization"));
    const ApiRequest r = parse_request(req.body, chat);
    const GenerationJob job = make_job(ctx, request_from_api(ctx, r));
    const std::string id = new_completion_id(chat);
    const int64_t created = unix_now();
    if (!r.stream) {
      WholeSink sink;
      const auto out = run_job(ctx, job, sink);
      res.set_content(json_text((chat ? chat_body : completion_body)(id, created, ctx.model_id, out.text,
                                                                     finish_reason(out.stop),
                                                                     {out.prompt_tokens, out.completion_tokens})),
                      "application/json");
      return;
    }
    // chat: the role first, as OpenAI does
    const json lead = chat ? chat_chunk(id, created, ctx.model_id, "", "", true) : json();
    stream_job(res, ctx, job, chat, id, created, r.include_usage, lead);
  } catch (...) {
    reply_error(res, to_api_error(std::current_exception()));
  }
}

}  // namespace

void check_api_key(const ServeContext& ctx, const std::string& got) {
  if (ctx.opts.api_key.empty()) return;
  const std::string want = "Bearer " + ctx.opts.api_key;
  // compare in time independent of where they differ
  unsigned diff = got.size() != want.size();
  for (size_t i = 0; i < want.size(); ++i) diff |= static_cast<unsigned>(want[i] ^ (i < got.size() ? got[i] : 0));
  if (diff)
    throw ApiError(401,
                   got.empty() ? "no API key: send the header 'Authorization: Bearer KEY' with the key duet-edge serve "
                                 "was started with"
                               : "incorrect API key provided",
                   "", "invalid_api_key");
}

struct ApiServer::Impl {
  ServeContext& ctx;
  GuardPolicy policy;
  httplib::Server http;
  explicit Impl(ServeContext& c) : ctx(c) {
    policy.loopback_only_hosts = is_loopback_name(host_name(c.opts.host));
    policy.allowed_origins = c.opts.allowed_origins;
  }
};

namespace {

// Host/Origin/Content-Type rules (request_guard.hpp) before any route; CORS headers on the reply.
httplib::Server::HandlerResponse guard(const GuardPolicy& policy, const httplib::Request& req,
                                       httplib::Response& res) {
  RequestFacts f;
  f.method = req.method;
  f.path = req.path;
  auto header = [&req](const char* name) -> std::optional<std::string> {
    if (!req.has_header(name)) return std::nullopt;
    return req.get_header_value(name);
  };
  f.host = header("Host");
  f.origin = header("Origin");
  f.content_type = header("Content-Type");
  const GuardVerdict v = check_request(policy, f);
  for (const auto& [k, val] : v.headers) res.set_header(k, val);
  if (v.refuse) {
    reply_error(res, *v.refuse);
    return httplib::Server::HandlerResponse::Handled;
  }
  if (v.preflight) {
    res.status = 204;
    return httplib::Server::HandlerResponse::Handled;
  }
  return httplib::Server::HandlerResponse::Unhandled;
}

void health_route(ServeContext& ctx, httplib::Response& res) {
  const auto cloud = ctx.sessions.probe(std::chrono::milliseconds(1000));
  json j = {{"status", cloud.up ? "ok" : "unavailable"},
            {"model", ctx.model_id},
            {"active_requests", ctx.sessions.active()},
            {"max_active_requests", ctx.sessions.max_active()},
            {"cloud_connections", ctx.sessions.connections()},
            {"mode", ctx.client.local() ? "local" : "split"}};
  if (!cloud.up) {  // as llama-server while it cannot serve: 503 and an error object
    res.status = 503;
    j["error"] = {{"code", 503}, {"type", "unavailable_error"},
                  {"message", "the cloud daemon does not answer: " + cloud.detail}};
  }
  res.set_content(json_text(j), "application/json");
}

// llama-server's token routes: {"content", "add_special"} -> {"tokens"}; {"tokens"} -> {"content"}
void tokenize_route(const ServeContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const json j = parse_body(req.body);
  if (!j.contains("content") || !j["content"].is_string())
    throw ApiError(400, "'content' must be a string", "content", "invalid_value");
  bool special = false;
  if (j.contains("add_special") && !j["add_special"].is_null()) {
    if (!j["add_special"].is_boolean()) throw ApiError(400, "'add_special' must be true or false", "add_special");
    special = j["add_special"].get<bool>();
  }
  const auto ids = ctx.client.tokenizer()->encode(j["content"].get<std::string>(), special);
  res.set_content(json_text({{"tokens", ids}}), "application/json");
}

void detokenize_route(const ServeContext& ctx, const httplib::Request& req, httplib::Response& res) {
  const json j = parse_body(req.body);
  if (!j.contains("tokens") || !j["tokens"].is_array())
    throw ApiError(400, "'tokens' must be an array of token ids", "tokens", "invalid_value");
  const auto& tok = *ctx.client.tokenizer();
  std::vector<int32_t> ids;
  for (const auto& v : j["tokens"]) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab_size())
      throw ApiError(400, "'tokens' holds " + brief(v) + ", not a token id of this model (0-" +
                              std::to_string(tok.vocab_size() - 1) + ")", "tokens", "invalid_value");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  res.set_content(json_text({{"content", tok.decode(ids, false)}}), "application/json");
}

// llama-server's /props: the defaults a request starts from, and the server's shape
json props_body(const ServeContext& ctx) {
  const auto& d = ctx.defaults;
  return {{"model", ctx.model_id},
          {"default_generation_settings",
           {{"temperature", d.sampling.temperature},
            {"top_k", d.sampling.top_k},
            {"top_p", d.sampling.top_p},
            {"repetition_penalty", d.sampling.repetition_penalty},
            {"max_tokens", d.max_new_tokens},
            {"n_ctx", d.max_positions}}},
          {"total_slots", ctx.sessions.max_active()},
          {"chat_template", ctx.chat ? to_string(ctx.chat->form()) : ""},
          {"mode", ctx.client.local() ? "local" : "split"},
          {"music", ctx.music.has_value()}};
}

}  // namespace

ApiServer::ApiServer(ServeContext& ctx) : impl_(std::make_unique<Impl>(ctx)) {
  auto& http = impl_->http;
  // A thread per connection (cpp-httplib): the generating requests, the ones waiting for a slot,
  // the page's files, and enough to spare that a few slow or idle connections (a client that
  // trickles its headers) cannot starve /health or the others; the read timeout ends those.
  const size_t threads = ctx.opts.max_active * 2 + kSpareConnections;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  // SO_REUSEADDR only: httplib's default adds SO_REUSEPORT, which lets a second server bind the
  // same port silently and take half the connections
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.set_tcp_nodelay(true);  // one small event per token
  http.set_keep_alive_max_count(100);
  http.set_keep_alive_timeout(1);  // an idle keep-alive connection holds a thread (and a stop) this long
  http.set_read_timeout(10, 0);
  http.set_write_timeout(30, 0);
  // refused from the Content-Length (or while a chunked body is read), before anything is parsed
  http.set_payload_max_length(ctx.opts.max_body_bytes);
  http.set_pre_routing_handler([policy = impl_->policy](const httplib::Request& req, httplib::Response& res) {
    return guard(policy, req, res);
  });

  http.Get("/health", [&ctx](const httplib::Request&, httplib::Response& res) { health_route(ctx, res); });
  auto keyed = [&ctx](void (*route)(const ServeContext&, const httplib::Request&, httplib::Response&)) {
    return [&ctx, route](const httplib::Request& req, httplib::Response& res) {
      try {
        check_api_key(ctx, req.get_header_value("Authorization"));
        route(ctx, req, res);
      } catch (...) {
        reply_error(res, to_api_error(std::current_exception()));
      }
    };
  };
  http.Post("/tokenize", keyed(tokenize_route));
  http.Post("/detokenize", keyed(detokenize_route));
  http.Get("/props", keyed([](const ServeContext& c, const httplib::Request&, httplib::Response& res) {
    res.set_content(json_text(props_body(c)), "application/json");
  }));
  http.Get("/v1/models", [&ctx](const httplib::Request& req, httplib::Response& res) {
    try {
      check_api_key(ctx, req.get_header_value("Authorization"));
      res.set_content(json_text(models_body(ctx.model_id, ctx.created)), "application/json");
    } catch (...) {
      reply_error(res, to_api_error(std::current_exception()));
    }
  });
  http.Get("/v1/models/(.+)", [&ctx](const httplib::Request& req, httplib::Response& res) {
    try {
      check_api_key(ctx, req.get_header_value("Authorization"));
      if (req.matches[1] != ctx.model_id)
        throw ApiError(404, "the model '" + std::string(req.matches[1]) + "' does not exist; this server serves '" +
                                ctx.model_id + "'",
                       "model", "model_not_found");
      res.set_content(json_text(models_body(ctx.model_id, ctx.created)["data"][0]), "application/json");
    } catch (...) {
      reply_error(res, to_api_error(std::current_exception()));
    }
  });
  http.Post("/v1/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    completion_route(ctx, false, req, res);
  });
  http.Post("/v1/chat/completions", [&ctx](const httplib::Request& req, httplib::Response& res) {
    completion_route(ctx, true, req, res);
  });
  add_music_routes(http, ctx);

  // anything else: OpenAI's not-found error (only where no route wrote a body)
  http.set_error_handler([max_body = ctx.opts.max_body_bytes](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty() || res.is_chunked_content_provider_) return;
    if (res.status == 404)
      reply_error(res, ApiError(404, "no route " + req.method + " " + req.path + " (see GET /v1/models, POST "
                                     "/v1/completions, POST /v1/chat/completions)", "", "unknown_url"));
    else if (res.status == 413)
      reply_error(res, ApiError(413, "the request body is larger than this server accepts (" +
                                         std::to_string(max_body) + " bytes; [serve] max_body_bytes)",
                                "", "request_too_large"));
  });
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr e) {
    reply_error(res, to_api_error(e));
  });
}

ApiServer::~ApiServer() = default;

int ApiServer::bind() {
  auto& o = impl_->ctx.opts;
  const int port = o.port == 0 ? impl_->http.bind_to_any_port(o.host) : (impl_->http.bind_to_port(o.host, o.port) ? o.port : -1);
  if (port < 0)
    throw std::runtime_error("cannot listen on " + o.host + ":" + std::to_string(o.port) +
                             ": is another server using the port? (choose one with --listen HOST:PORT)");
  return port;
}

void ApiServer::run() { impl_->http.listen_after_bind(); }
void ApiServer::stop() { impl_->http.stop(); }

}  // namespace duet::edge::server
