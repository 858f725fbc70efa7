#pragma once
// NotaGen pieces (config.json model_type "notagen") from a PieceRequest, as TuneMaker makes tunes
// of token-level music models: the prompt the way the model was trained (its duet.json's
// prompt_form: NotaGen-X's "%period / %composer / %instrumentation" lines, a folk model's
// S:/M:/L:/K: header, or raw), checked before anything is loaded; the piece's ABC header (title,
// tempo, seed); the bar constraint per character for header-form models; the .abc text without
// the stream markers. GenerationJob makes one per piece request and steers each run with it.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "edge/generation/piece_request.hpp"
#include "edge/music/music_options.hpp"

namespace duet::notagen {
struct PieceOptions;
}
namespace duet::music {
class BarConstraint;
}

namespace duet::edge {

// <dir>/duet.json, or an empty object when there is none; throws naming the file when malformed.
nlohmann::json read_duet_json(const std::string& dir);

class PieceMaker {
 public:
  // Reads model_dir's duet.json (no weights). Throws std::invalid_argument with a sentence for a
  // request that does not fit the model's prompt form (music::AbcFieldError for a folk option).
  PieceMaker(const std::string& model_dir, const PieceRequest& req);

  const std::string& prompt_text() const { return prompt_; }  // what the model continues (markers kept)
  const std::string& title() const { return title_; }         // T: ("" = "NotaGen piece")
  // A header-form model's checked options (its "tune" in the --json record); none otherwise.
  const std::optional<music::CheckedMusicOptions>& folk() const { return folk_; }
  bool constrained() const { return folk_ && req_.constrain; }
  // About the request: ignored options, a prompt the model was not trained on, the folk options'.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // X:index, T:title (duet seed S), Q: where the model has tempos, and a comment with the seed,
  // NotaGen, local or split, and the bar constraint for header-form models.
  std::string header(int index, uint64_t seed, bool local) const;
  // The .abc of a piece: header + the prompt and text (what the model wrote) without the stream
  // markers, ending with a newline.
  std::string abc(const std::string& header, const std::string& text) const;
  // Installs the bar constraint (a fresh one per run) as po.filter; returns it to read its
  // relaxed steps after the run, null when there is none.
  std::shared_ptr<music::BarConstraint> steer(notagen::PieceOptions& po) const;

 private:
  void pci_prompt(const std::string& dir, const nlohmann::json& duet_json);
  void folk_prompt(const std::string& dir);

  PieceRequest req_;
  std::string prompt_, title_, tempo_;
  std::optional<music::CheckedMusicOptions> folk_;
  std::string opening_;  // a continued folk tune's body: the bar constraint follows it
  std::vector<std::string> warnings_;
};

}  // namespace duet::edge
