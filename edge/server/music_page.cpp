#include "edge/server/music_page.hpp"

#include <httplib.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "edge/client/music_generation.hpp"
#include "edge/client/stop_reason.hpp"
#include "edge/server/completion.hpp"
#include "edge/server/http_reply.hpp"
#include "edge/server/http_routes.hpp"
#include "edge/server/music_request.hpp"
#include "edge/server/note_samples.hpp"

namespace duet::edge::server {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// duet.json's "units" (MusicPromptSpec does not keep them)
json units_of(const std::string& model_dir) {
  try {
    const json j = json::parse(read_file(fs::path(model_dir) / "duet.json"));
    if (j.contains("units") && j["units"].is_array()) return j["units"];
  } catch (const std::exception&) {
  }
  return json::array({"1/8", "1/16", "1/4"});
}

// each style's own meter, unit and key: the page sets them when a style is chosen
json style_defaults(const MusicPromptSpec& m) {
  json j = json::object();
  for (const auto& [name, st] : m.style_stats) j[name] = {{"meter", st.meter}, {"unit", st.unit}, {"key", st.key}};
  return j;
}

}  // namespace

void add_music_routes(httplib::Server& http, ServeContext& ctx) {
  const fs::path web = ctx.opts.web_dir;
  const fs::path abcjs = web / "node_modules" / "abcjs" / "dist";
  if (ctx.music && !fs::exists(abcjs / "abcjs-basic-min.js"))
    std::fprintf(stderr,
                 "duet-edge serve: warning: %s has no abcjs: the music page cannot render; run scripts/setup.sh "
                 "(npm ci in web/)\n",
                 abcjs.string().c_str());
  // the page's own files only: web/'s top level by name (not node_modules, not package*.json)
  http.Get(R"(/web/([A-Za-z0-9_-]+)\.(js|css|html))", [web](const httplib::Request& req, httplib::Response& res) {
    const std::string ext = req.matches[2];
    const fs::path file = web / (std::string(req.matches[1]) + "." + ext);
    if (!fs::is_regular_file(file)) {
      res.status = 404;
      return;
    }
    const char* type = ext == "js" ? "text/javascript" : ext == "css" ? "text/css" : "text/html; charset=utf-8";
    res.set_content(read_file(file), type);
  });
  http.set_mount_point("/vendor/abcjs", abcjs.string());  // abcjs's dist folder: its built scripts only
  http.Get("/vendor/abcjs-audio.css", [web](const httplib::Request&, httplib::Response& res) {
    const fs::path css = web / "node_modules" / "abcjs" / "abcjs-audio.css";
    if (!fs::is_regular_file(css)) {
      res.status = 404;
      return;
    }
    res.set_content(read_file(css), "text/css");
  });

  auto page = [&ctx, web](const httplib::Request&, httplib::Response& res) {
    if (!ctx.music) {
      res.set_content("duet-edge serve: " + ctx.model_id +
                          " is not a music model (no duet.json): the OpenAI API is at /v1 (GET /v1/models, POST "
                          "/v1/completions, POST /v1/chat/completions)\n",
                      "text/plain");
      return;
    }
    const fs::path html = web / "music.html";
    if (!fs::exists(html)) {
      res.status = 500;
      res.set_content("the music page is missing: " + html.string() + " (set [serve] web_dir or --web-dir)\n",
                      "text/plain");
      return;
    }
    res.set_content(read_file(html), "text/html; charset=utf-8");
  };
  http.Get("/", page);
  http.Get("/music", page);

  http.Get(R"(/soundfont/[a-z0-9_]+-mp3/([A-G][b#]?[0-8])\.mp3)", [](const httplib::Request& req, httplib::Response& res) {
    const auto pitch = note_name_to_midi(req.matches[1]);
    if (!pitch) {
      res.status = 404;
      return;
    }
    res.set_header("Cache-Control", "max-age=86400");
    res.set_content(note_wav(*pitch), "audio/wav");
  });

  http.Get("/api/music", [&ctx](const httplib::Request& req, httplib::Response& res) {
    try {
      check_api_key(ctx, req.get_header_value("Authorization"));
      if (!ctx.music) throw ApiError(404, ctx.model_id + " is not a music model (no duet.json)", "", "not_music_model");
      const auto& m = *ctx.music;
      json j = {{"model", ctx.model_id},
                {"styles", m.styles},
                {"meters", m.meters},
                {"units", units_of(ctx.client.config().model_path)},
                {"keys", m.keys},
                {"defaults", m.defaults},
                {"style_defaults", style_defaults(m)},
                {"temperature", ctx.defaults.sampling.temperature},
                {"max_tokens", ctx.defaults.max_new_tokens}};
      // the words for the last chunk's stop_reason, so the page says what the CLI says
      json reasons = json::object();
      for (StopReason r : kStopReasons) reasons[to_string(r)] = describe(r);
      j["stop_reasons"] = reasons;
      res.set_content(json_text(j), "application/json");
    } catch (...) {
      reply_error(res, to_api_error(std::current_exception()));
    }
  });

  http.Post("/api/music", [&ctx](const httplib::Request& req, httplib::Response& res) {
    try {
      check_api_key(ctx, req.get_header_value("Authorization"));
      if (!ctx.music) throw ApiError(404, ctx.model_id + " is not a music model (no duet.json)", "", "not_music_model");
      // the form made into a tune's GenerationRequest, run as the API's are: options parsed as
      // ABC (refused with a sentence naming the option), the same bar-true sampling as
      // duet-edge generate
      const GenerationJob job = make_job(ctx, request_from_music(ctx, parse_music_request(req.body)));
      const TuneMaker& maker = *job.tune();
      std::string header = maker.prompt_text();
      for (const auto& w : maker.warnings()) header = "% warning: " + w + "\n" + header;
      const std::string id = new_completion_id(false);
      const int64_t created = unix_now();
      // the tune's header first (X:, T:, Q:, the seed: as duet-edge generate writes it), then the
      // prompt the model continues: the page shows it whole
      stream_job(res, ctx, job, /*chat=*/false, id, created, /*usage=*/true,
                 completion_chunk(id, created, ctx.model_id, maker.header(1, job.plan().sampling.seed) + header, ""));
    } catch (...) {
      reply_error(res, to_api_error(std::current_exception()));
    }
  });
}

}  // namespace duet::edge::server
