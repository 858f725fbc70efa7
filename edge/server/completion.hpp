#pragma once
// The serve routes' side of a GenerationJob (edge/generation/generation_job.hpp): an OpenAI
// request or the music page's form made into one GenerationRequest, the job made on serve's
// defaults (the prompt checked against the vocabulary and the context), and run on the pooled
// cloud sessions. The OpenAI routes and the page call these directly; errors are ApiErrors.
#include <exception>

#include "edge/generation/generation_job.hpp"
#include "edge/server/music_request.hpp"
#include "edge/server/openai_json.hpp"
#include "edge/server/serve_context.hpp"

namespace duet::edge::server {

// From an OpenAI request: the chat template (its end of turn a stop token) or the prompt encoded
// as duet-edge generate --prompt does, the request's budget, sampling and stop strings. Throws
// ApiError (a model not served: 404; no chat template: 400).
GenerationRequest request_from_api(const ServeContext& ctx, const ApiRequest& r);
// From the music page's form: a tune of the model (its options, the bar constraint unless
// "constraint": false), the same budget and sampling fields as the API's. Throws ApiError 404
// when the model is not a music model.
GenerationRequest request_from_music(const ServeContext& ctx, const MusicApiRequest& m);

// request -> plan on ctx.defaults; a tune's wrong option is ApiError 400 naming it, a prompt
// outside the vocabulary or the context ApiError 400.
GenerationJob make_job(ServeContext& ctx, const GenerationRequest& r);
// The common part: a plan's prompt checked against the vocabulary and the context length.
void check_prompt(const ServeContext& ctx, const GenerationPlan& p);

// Runs the job on ctx's pooled cloud sessions and logs its line on stderr.
GenerationOutcome run_job(ServeContext& ctx, const GenerationJob& job, GenerationSink& sink);

// An exception as OpenAI's error object with its HTTP status.
ApiError to_api_error(const std::exception_ptr& e);

}  // namespace duet::edge::server
