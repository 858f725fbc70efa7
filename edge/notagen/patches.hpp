#pragma once
// NotaGen's patch form of ABC text, the rules of scripts/notagen/patchilizer.py (no LibTorch):
// a piece is a BOS patch, its metadata lines cut into patches, its body lines cut into bars and
// the bars into patches, and an EOS patch. A line or bar whose length is not a multiple of the
// patch size gets an EOS character after it; a short patch is padded with PAD.
#include <cstdint>
#include <string>
#include <vector>

namespace duet::notagen {

constexpr int32_t kPad = 0, kBos = 1, kEos = 2;
using Patch = std::vector<int32_t>;  // patch_size character codes

// Lines with their "\n" (the last one keeps none when the text does not end with one); empty
// lines are dropped.
std::vector<std::string> split_lines(const std::string& text);
// One body line -> its bars (see patchilizer.py); joining them gives the line back.
std::vector<std::string> split_bars(const std::string& line);
// A line or bar -> patches of at most `size` characters; EOS after it unless its length is a
// multiple of `size` or open_end (the bar is still being written).
std::vector<std::string> cut(const std::string& text, int64_t size, bool open_end = false);

Patch bos_patch(int64_t size);
Patch to_patch(const std::string& chunk, int64_t size);  // codes, PAD to size; throws on non-ASCII
bool is_eos_patch(const Patch& p);                         // BOS, EOS, ...: the piece is over
std::string patch_text(const Patch& p, size_t from = 0);   // characters [from, first EOS)
Patch clean_patch(const Patch& p);                         // PAD after the first EOS

// A piece's text split where NotaGen splits it: metadata = the leading lines that are ABC header
// fields ("X:...") or comments ("%..."), up to the first line starting with "[r:" or "[V:" or any
// other line; the body is the rest.
struct PieceLines {
  std::vector<std::string> meta, body;
};
PieceLines split_piece(const std::string& text);

// A prompt for generation: BOS + metadata + body, the body's last bar left open. `prefix` holds
// the characters of an unfinished last patch: the character decoder starts with them.
struct EncodedPrompt {
  std::vector<Patch> patches;
  std::vector<int32_t> prefix;
};
EncodedPrompt encode_prompt(const PieceLines& lines, int64_t size);

// The long-piece rule (NotaGen's "stream generating"): when a piece fills the patch context, keep
// its metadata and the last half of its body lines, dropping more lines (and, for a single huge
// line, leading patches) until it takes at most `budget` patches. Never fails: returns at least
// the BOS patch.
EncodedPrompt reencode_tail(const std::string& text, int64_t size, int64_t budget);

// "[r:3/12]" at the start of each line removed (the stream markers are for the model only).
std::string strip_stream_markers(const std::string& text);

// strip_stream_markers for text that arrives in pieces (a piece as it is generated): push()
// returns what can be shown now, holding a line's start back until it cannot be a marker;
// finish() returns what is still held. The pieces' outputs joined == strip_stream_markers of the
// text joined (at_line_start: the text before these pieces ended with a newline, or there was none).
class StreamMarkerFilter {
 public:
  explicit StreamMarkerFilter(bool at_line_start = true) : mid_line_(!at_line_start) {}
  std::string push(const std::string& text);
  std::string finish();

 private:
  std::string held_;
  bool mid_line_;
};

}  // namespace duet::notagen
