#include "edge/server/request_guard.hpp"

#include <algorithm>
#include <cctype>

namespace duet::edge::server {

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// "http://localhost:8080" -> "localhost:8080" (scheme and anything after the authority dropped)
std::optional<std::string> origin_authority(const std::string& origin) {
  const auto scheme = origin.find("://");
  if (scheme == std::string::npos) return std::nullopt;
  const std::string rest = origin.substr(scheme + 3);
  return lower(rest.substr(0, rest.find('/')));
}

bool origin_allowed(const GuardPolicy& p, const RequestFacts& r, const std::string& origin) {
  for (const auto& o : p.allowed_origins)
    if (o == "*" || lower(o) == lower(origin)) return true;
  const auto auth = origin_authority(origin);
  return auth && r.host && !auth->empty() && *auth == lower(trim(*r.host));
}

}  // namespace

std::string host_name(const std::string& host_header) {
  std::string h = lower(trim(host_header));
  if (!h.empty() && h.front() == '[') {
    const auto close = h.find(']');
    return close == std::string::npos ? h : h.substr(1, close - 1);
  }
  const auto colon = h.find(':');
  return colon == std::string::npos ? h : h.substr(0, colon);
}

bool is_loopback_name(const std::string& name) {
  if (name == "localhost" || name == "::1") return true;
  if (name.rfind("127.", 0) != 0) return false;
  return std::all_of(name.begin(), name.end(), [](char c) { return c == '.' || std::isdigit(static_cast<unsigned char>(c)); });
}

GuardVerdict check_request(const GuardPolicy& p, const RequestFacts& r) {
  GuardVerdict v;
  if (p.loopback_only_hosts && r.host && !is_loopback_name(host_name(*r.host)))
    v.refuse = ApiError(403, "this server listens on loopback and answers only Host localhost, 127.0.0.1 or [::1] "
                             "(a page on another site may not reach it through DNS rebinding)",
                        "", "host_not_allowed");
  else if (r.origin && !origin_allowed(p, r, *r.origin))
    v.refuse = ApiError(403, "cross-origin requests from " + brief(nlohmann::json(*r.origin)) +
                                 " are not allowed: add the origin to [serve] allowed_origins (or --allow-origin) "
                                 "to let that page use this server",
                        "", "origin_not_allowed");
  if (v.refuse) return v;
  if (r.origin) {
    v.headers = {{"Access-Control-Allow-Origin", *r.origin},
                 {"Vary", "Origin"},
                 {"Access-Control-Allow-Credentials", "true"}};
    if (r.method == "OPTIONS") {
      v.headers.push_back({"Access-Control-Allow-Methods", "GET, POST, OPTIONS"});
      v.headers.push_back({"Access-Control-Allow-Headers", "Authorization, Content-Type"});
      v.headers.push_back({"Access-Control-Max-Age", "86400"});
      v.preflight = true;
      return v;
    }
  }
  if (r.method == "POST") {
    const std::string type = r.content_type ? lower(trim(r.content_type->substr(0, r.content_type->find(';')))) : "";
    if (type != "application/json")
      v.refuse = ApiError(415, "the request body must be JSON, sent with 'Content-Type: application/json' (got " +
                                   (r.content_type ? brief(nlohmann::json(*r.content_type)) : std::string("none")) +
                                   ")",
                          "", "unsupported_media_type");
  }
  return v;
}

}  // namespace duet::edge::server
