#include "edge/client/piece_maker.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "edge/music/abc_file.hpp"
#include "edge/music/bar_constraint.hpp"
#include "edge/notagen/piece_generator.hpp"

namespace duet::edge {

namespace {

using nlohmann::json;

std::string fill(std::string t, const std::string& name, const std::string& value) {
  const std::string key = "{" + name + "}";
  for (size_t at; (at = t.find(key)) != std::string::npos;) t.replace(at, key.size(), value);
  return t;
}

std::string one_line(const char* what, const std::string& v) {
  if (v.find_first_of("\r\n") != std::string::npos || v.size() > 200)
    throw std::invalid_argument(std::string(what) + " must be one line of at most 200 characters");
  for (unsigned char c : v)
    if (c >= 128) throw std::invalid_argument(std::string(what) + " '" + v + "': NotaGen reads ASCII only");
  return v;
}

// The .abc file's tune without the lines duet-edge or a reader adds (X:, T:, Q:, % comments).
std::string continuation_text(const std::string& path, std::string* title = nullptr) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("cannot read " + path);
  std::string line, out;
  bool started = false;
  while (std::getline(in, line)) {
    if (line.rfind("X:", 0) == 0) {
      if (started) break;  // the first tune only
      started = true;
      continue;
    }
    if (line.rfind("T:", 0) == 0 && title && title->empty()) *title = line.substr(2);
    if (line.rfind("T:", 0) == 0 || line.rfind("Q:", 0) == 0 || line.rfind("% duet-edge", 0) == 0) continue;
    out += line + "\n";
  }
  return out;
}

// The edge's bar constraint (edge/music/bar_constraint.hpp) over NotaGen's characters: every
// character is a token whose text is itself; the EOS character closes a bar's patch and adds no
// text (allowed anywhere but a patch's start); the EOS patch (BOS, then EOS) ends the tune and
// may start a patch only where the constraint lets a tune end.
class BarFilter final : public notagen::CharFilter {
 public:
  BarFilter(const music::BarConstraintOptions& o, const std::string& opening)
      : c_(std::make_shared<music::BarConstraint>(o, texts(), std::vector<int32_t>{notagen::kBos})) {
    c_->observe(opening);
  }
  void mask(torch::Tensor& logits, const notagen::Patch& so_far) override {
    auto ok = c_->allowed();
    ok.resize(static_cast<size_t>(logits.size(0)), 0);
    const bool start = so_far.empty();
    if (!start && so_far[0] == notagen::kBos) {  // the end patch goes on with EOS
      std::fill(ok.begin(), ok.end(), 0);
      ok[notagen::kEos] = 1;
    } else {
      ok[notagen::kEos] = !start;
      ok[notagen::kBos] = start && c_->can_end();
    }
    std::vector<uint8_t> forbid(ok.size());
    for (size_t i = 0; i < ok.size(); ++i) forbid[i] = !ok[i];
    auto m = torch::from_blob(forbid.data(), {static_cast<int64_t>(forbid.size())}, torch::kUInt8).to(torch::kBool);
    logits.masked_fill_(m.to(logits.device()), -std::numeric_limits<float>::infinity());
  }
  void advance(int32_t c) override {
    if (c > notagen::kEos) c_->advance(c);  // PAD, BOS and EOS are structure, not text
  }
  const std::shared_ptr<music::BarConstraint>& constraint() const { return c_; }

 private:
  static std::vector<std::string> texts() {
    std::vector<std::string> t(128);
    for (int c = 32; c < 127; ++c) t[static_cast<size_t>(c)] = std::string(1, static_cast<char>(c));
    t['\n'] = "\n";
    return t;
  }
  std::shared_ptr<music::BarConstraint> c_;
};

}  // namespace

json read_duet_json(const std::string& dir) {
  std::ifstream in(dir + "/duet.json");
  if (!in) return json::object();
  try {
    return json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(dir + "/duet.json: " + e.what());
  }
}

PieceMaker::PieceMaker(const std::string& dir, const PieceRequest& req) : req_(req), title_(req.title) {
  const json dj = read_duet_json(dir);
  const std::string form = dj.value("prompt_form", dj.contains("styles") ? "abc-header" : "period-composer-instrumentation");
  const bool pci_fields = !req.period.empty() || !req.composer.empty() || !req.instrumentation.empty();
  const bool folk_fields = !req.folk.style.empty() || !req.folk.meter.empty() || !req.folk.unit.empty() ||
                           !req.folk.key.empty();
  if (!req.prompt.empty()) {
    if (pci_fields || !req.continue_path.empty())
      throw std::invalid_argument("--prompt is the whole prompt: leave out --period/--composer/--instrumentation/--continue");
    if (folk_fields) throw std::invalid_argument("--prompt is the whole prompt: leave out --style/--meter/--unit/--key");
    prompt_ = req.prompt;
  } else if (form == "period-composer-instrumentation") {
    if (folk_fields)  // (they may come from a config file written for a folk model)
      warnings_.push_back(dir + " takes --period/--composer/--instrumentation; style, meter, unit and key are ignored");
    if (!req.continue_path.empty() && pci_fields)
      throw std::invalid_argument("--continue takes the prompt from the file: leave out --period/--composer/--instrumentation");
    if (!req.continue_path.empty())
      prompt_ = continuation_text(req.continue_path, &title_);
    else
      pci_prompt(dir, dj);
  } else if (form == "raw") {
    if (req.continue_path.empty())
      throw std::invalid_argument(dir + " has no prompt form in its duet.json: give the prompt with --prompt");
    prompt_ = continuation_text(req.continue_path, &title_);
  } else {  // an ABC header (S:, M:, L:, K:) the way abc-folk's prompts are
    if (pci_fields) throw std::invalid_argument(dir + " takes --style/--meter/--unit/--key, not --period/--composer/--instrumentation");
    folk_prompt(dir);
  }
  if (notagen::split_piece(prompt_).body.empty() && !prompt_.empty() && prompt_.back() != '\n') prompt_ += "\n";
}

// NotaGen-X's form: the three lines of duet.json's prompt_template, its defaults for those not given
void PieceMaker::pci_prompt(const std::string& dir, const json& dj) {
  auto def = [&](const char* k, const std::string& v) {
    if (!v.empty()) return v;
    if (dj.contains("defaults") && dj["defaults"].contains(k)) return dj["defaults"][k].get<std::string>();
    throw std::invalid_argument(std::string("--") + k + " is needed (NotaGen's prompt: period, composer, instrumentation)");
  };
  const std::string p = one_line("--period", def("period", req_.period));
  const std::string c = one_line("--composer", def("composer", req_.composer));
  const std::string i = one_line("--instrumentation", def("instrumentation", req_.instrumentation));
  prompt_ = fill(fill(fill(dj.value("prompt_template", std::string("%{period}\n%{composer}\n%{instrumentation}\n")),
                           "period", p), "composer", c), "instrumentation", i);
  if (title_.empty()) title_ = p + ", " + c + ", " + i;
  if (dj.contains("prompts") && dj["prompts"].is_array()) {  // the combinations it was trained on
    bool known = false;
    for (const auto& k : dj["prompts"])
      known = known || (k.is_array() && k.size() == 3 && k[0] == p && k[1] == c && k[2] == i);
    if (!known)
      warnings_.push_back(p + " / " + c + " / " + i + " is not among the " + std::to_string(dj["prompts"].size()) +
                          " combinations in " + dir + "/duet.json \"prompts\" (NotaGen's prompts.txt): the model "
                          "may not follow it");
  }
}

// A folk model's form: the ABC header of its duet.json, checked as a tune's options are; --continue's
// file under the flags
void PieceMaker::folk_prompt(const std::string& dir) {
  const auto spec = music::MusicModelSpec::from_model_dir(dir);
  if (!spec) throw std::invalid_argument(dir + "/duet.json is missing: no prompt form known");
  music::MusicRequest r = req_.folk;
  if (!req_.continue_path.empty()) {
    const auto op = music::read_abc_opening(req_.continue_path);
    auto pick = [](const std::string& flag, const std::string& file) { return flag.empty() ? file : flag; };
    r = {pick(r.style, op.style), pick(r.meter, op.meter), pick(r.unit, op.unit), pick(r.key, op.key)};
    opening_ = op.body;
    if (title_.empty()) title_ = op.title;
  }
  folk_ = music::check_music_options(*spec, r);
  warnings_.insert(warnings_.end(), folk_->warnings.begin(), folk_->warnings.end());
  prompt_ = folk_->prompt + opening_;
  if (title_.empty()) {  // "Jig in D", as abc-folk's tunes are titled
    std::string rhythm = folk_->rhythm().empty() ? "tune" : folk_->rhythm();
    rhythm[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(rhythm[0])));
    title_ = rhythm + " in " + folk_->key.text;
  }
  tempo_ = music::tempo_field(*spec, *folk_, req_.tempo_bpm);
}

std::string PieceMaker::header(int index, uint64_t seed, bool local) const {
  std::string head = "X:" + std::to_string(index) + "\nT:" + (title_.empty() ? std::string("NotaGen piece") : title_) +
                     " (duet seed " + std::to_string(seed) + ")\n";
  if (!tempo_.empty()) head += tempo_ + "\n";
  head += "% duet-edge: seed " + std::to_string(seed) + ", notagen, " + (local ? "local" : "split") +
          (folk_ ? std::string(", bar constraint ") + (constrained() ? "on" : "off") : std::string()) + "\n";
  return head;
}

std::string PieceMaker::abc(const std::string& header, const std::string& text) const {
  std::string abc = header + notagen::strip_stream_markers(prompt_ + text);
  if (abc.back() != '\n') abc += "\n";
  return abc;
}

std::shared_ptr<music::BarConstraint> PieceMaker::steer(notagen::PieceOptions& po) const {
  po.filter = nullptr;
  if (!constrained()) return nullptr;
  music::BarConstraintOptions bo;
  bo.bar = folk_->meter.bar();
  bo.unit = folk_->unit;
  bo.compound = folk_->meter.compound();
  bo.max_identical_bars = req_.max_identical_bars;
  auto bars = std::make_shared<BarFilter>(bo, opening_);
  po.filter = bars;
  return bars->constraint();
}

}  // namespace duet::edge
