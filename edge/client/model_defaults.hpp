#pragma once
// The one place where a model's own generation defaults (a music model's duet.json: sampling and
// token budget) meet the edge's config, for every front end (generate, serve's API, the page).
// Precedence, lowest first: duet-edge's built-in defaults < the model's duet.json < the config
// file's [generate] < command-line flags < an API request's fields. Flags and requests are
// applied by their callers after this.
#include "edge/client/edge_config.hpp"

namespace duet::edge {

// Fills cfg.sampling (temperature, top_k, top_p) and cfg.max_new_tokens from the model folder's
// duet.json where the config file did not choose them. Idempotent; no duet.json: no change.
void apply_model_defaults(EdgeConfig& cfg);

}  // namespace duet::edge
