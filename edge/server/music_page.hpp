#pragma once
// The music page of `duet-edge serve`, for models with a duet.json (models/abc-folk):
//   GET  /, /music               the page (web/music.html)
//   GET  /web/*                  its script and style (web/)
//   GET  /vendor/abcjs/*         abcjs from web/node_modules (npm ci; never a CDN)
//   GET  /soundfont/*            note samples for abcjs playback, made here (note_samples.hpp)
//   GET  /api/music              the form's choices: styles, meters, units, keys, defaults
//   POST /api/music              {style, meter, unit, key, seed, temperature, max_tokens}: the
//                                tune as server-sent events in OpenAI's completion chunk format
//                                (the first chunk carries the X:/S:/M:/L:/K: header), then [DONE]
namespace httplib {
class Server;
}

namespace duet::edge::server {

struct ServeContext;
void add_music_routes(httplib::Server& http, ServeContext& ctx);

}  // namespace duet::edge::server
