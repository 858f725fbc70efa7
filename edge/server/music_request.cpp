#include "edge/server/music_request.hpp"

namespace duet::edge::server {

using nlohmann::json;

namespace {

std::string str_field(const json& j, const char* k) {
  if (!j.contains(k) || j[k].is_null()) return "";
  if (!j[k].is_string()) throw ApiError(400, std::string("'") + k + "' must be a string", k, "invalid_value");
  return j[k].get<std::string>();
}

}  // namespace

MusicApiRequest parse_music_request(const std::string& body) {
  const json j = parse_body(body);
  MusicApiRequest r;
  r.style = str_field(j, "style");
  r.meter = str_field(j, "meter");
  r.unit = str_field(j, "unit");
  r.key = str_field(j, "key");
  if (j.contains("constraint") && !j["constraint"].is_null()) {
    if (!j["constraint"].is_boolean())
      throw ApiError(400, "'constraint' must be true or false", "constraint", "invalid_value");
    r.constraint = j["constraint"].get<bool>();
  }
  r.sampling = read_sampling(j);  // the OpenAI routes' reader: same checks, same messages
  return r;
}

}  // namespace duet::edge::server
