#pragma once
// Kept for existing includes: the music model spec now lives in edge/music/music_options.hpp, with
// the checks every tune request goes through.
#include "edge/music/music_options.hpp"

namespace duet::edge {
using MusicPromptSpec = duet::music::MusicModelSpec;
}  // namespace duet::edge
