#pragma once
// The note samples abcjs plays a tune with, made here so that the music page needs no network:
// abcjs asks for <soundfont>/<instrument>-mp3/<Note><octave>.mp3 (e.g. Db4.mp3); we answer with
// a short WAV (the browser decodes by content, not by name): a plucked, piano-like tone of that
// pitch, the same for every instrument.
#include <optional>
#include <string>

namespace duet::edge::server {

// MIDI pitch of an abcjs note name ("C4" = 60, "Bb0" = 22), nullopt when it is not one.
std::optional<int> note_name_to_midi(const std::string& name);
// A 16-bit mono WAV file of the pitch, about 1.5 s long.
std::string note_wav(int midi_pitch);

}  // namespace duet::edge::server
