#pragma once
// `duet-edge serve` as a function: load the edge model once, connect to the daemon (or load the
// blocks, local), listen, print "duet-edge: serving MODEL on http://HOST:PORT", serve until
// SIGINT/SIGTERM. Returns the exit code.
#include "edge/client/edge_config.hpp"

namespace duet::edge::server {

int run_serve(const EdgeConfig& cfg, bool local);

}  // namespace duet::edge::server
