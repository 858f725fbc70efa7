#pragma once
// duet-edge generate's printing as a GenerationSink, the one report writer for every model: the
// text streamed as it comes (or printed whole at the end), then per run the warnings and either
// the summary line (stderr) or one --json record (stdout: ids, text, the tune, each round trip's
// timings and a summary; a NotaGen piece's: its characters, patches, cuts and each patch's round).
// One sink per run (a tune or piece of --count, or the one text); the job's outcome carries what
// the report needs.
#include <cstdint>
#include <string>
#include <vector>

#include "edge/client/edge_config.hpp"
#include "edge/generation/generation_sink.hpp"

namespace duet::edge {
class EdgeClient;
class GenerationJob;
struct Tune;
struct TuneRequest;
}  // namespace duet::edge

namespace duet::edge::cli {

// What stays the same over generate's runs.
struct GenerateReport {
  const EdgeConfig* cfg = nullptr;
  bool local = false;
  const EdgeClient* client = nullptr;  // its resumes, its tokenizer (null: ids only, or a NotaGen piece)
  int64_t edge_weight_bytes = 0;       // a NotaGen piece's record: the edge's weights
  double load_ms = 0;
  bool json = false, streaming = false;
  int64_t count = 1;                   // runs in all (the summary line names the tune past one)
  const TuneRequest* tune = nullptr;   // the tune's request; null for a text
  std::string prompt_text;             // a text's --prompt, printed before what follows it
};

class GenerateSink final : public GenerationSink {
 public:
  // index: 0-based run; job: the job this run runs (its plan, seed, and tune or piece). Streaming
  // prints the tune's or piece's header and the prompt at once.
  GenerateSink(const GenerateReport& report, const GenerationJob& job, int64_t index);
  bool text(const std::string& delta) override;
  void finish(const GenerationOutcome& out) override;
  const std::string& abc() const { return abc_; }  // the tune's or piece's ABC once finished ("" for a text)

 private:
  void print_record(const GenerationOutcome& out, const std::string& text, const Tune* tune,
                    const std::vector<double>& decode_ms) const;
  void finish_piece(const GenerationOutcome& out, const std::vector<double>& patch_ms);
  void print_piece_record(const GenerationOutcome& out, const std::string& text,
                          const std::vector<double>& patch_ms) const;

  const GenerateReport& r_;
  const GenerationJob& job_;
  int64_t index_;
  uint64_t seed_;
  std::string head_, prompt_text_;
  std::string abc_;
};

}  // namespace duet::edge::cli
