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

// Streams one job to `res` as OpenAI chunks (an SSE sink): `lead` first when it is not null
// (chat's role chunk, the music page's tune header), each text delta, the finish chunk (its
// finish_reason from the job's StopReason, duet's stop_reason beside it), the usage chunk when
// `usage`. A failure after the status line went out travels as an error event, as OpenAI's does;
// a reader that goes away ends the generation, and with it the request's cloud session.
void stream_job(httplib::Response& res, ServeContext& ctx, const GenerationJob& job, bool chat, const std::string& id,
                int64_t created, bool usage, const nlohmann::json& lead);

}  // namespace duet::edge::server
