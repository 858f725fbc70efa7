#pragma once
// What the OpenAI routes and the music page answer with alike: an error object with its status,
// and one completion streamed as server-sent OpenAI chunks. Includes cpp-httplib: only the
// server's .cpp files include this.
#include <httplib.h>

#include <cstdint>
#include <string>

#include "edge/server/completion.hpp"

namespace duet::edge::server {

int64_t unix_now();  // seconds, for the `created` field
void reply_error(httplib::Response& res, const ApiError& e);

// Streams one completion to `res`: `lead` first when it is not null (chat's role chunk, the
// music page's tune header), each text delta, the finish chunk, the usage chunk when `usage`.
// A failure after the status line went out travels as an error event, as OpenAI's does; a reader
// that goes away ends the generation, and with it the request's cloud session.
void stream_completion(httplib::Response& res, ServeContext& ctx, const PreparedRequest& p, bool chat,
                       const std::string& id, int64_t created, bool usage, const nlohmann::json& lead);

}  // namespace duet::edge::server
