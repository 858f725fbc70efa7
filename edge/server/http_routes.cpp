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

// One OpenAI completion route (chat or not), streaming or whole.
void completion_route(ServeContext& ctx, bool chat, const httplib::Request& req, httplib::Response& res) {
  try {
    check_api_key(ctx, req.get_header_value("Authorization"));
    const ApiRequest r = parse_request(req.body, chat);
    const PreparedRequest p = prepare(ctx, r);
    const std::string id = new_completion_id(chat);
    const int64_t created = unix_now();
    if (!r.stream) {
      const auto out = run_completion(ctx, p);
      const std::string finish = finish_reason(out.stop_reason);
      res.set_content(json_text((chat ? chat_body : completion_body)(id, created, ctx.model_id, out.text, finish,
                                                                     out.usage)),
                      "application/json");
      return;
    }
    // chat: the role first, as OpenAI does
    const json lead = chat ? chat_chunk(id, created, ctx.model_id, "", "", true) : json();
    stream_completion(res, ctx, p, chat, id, created, r.include_usage, lead);
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
