#include "edge/client/music_generation.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <cctype>
#include <limits>

#include "edge/music/tune_steering.hpp"

namespace duet::edge {

namespace {

std::string key_words(const music::Key& k) {
  static const std::map<std::string, std::string> names = {{"", ""},           {"m", " minor"},     {"dor", " dorian"},
                                                           {"phr", " phrygian"}, {"lyd", " lydian"}, {"mix", " mixolydian"},
                                                           {"loc", " locrian"}};
  std::string t(1, k.tonic);
  if (k.accidental) t += k.accidental == '#' ? " sharp" : " flat";
  auto it = names.find(k.mode);
  return t + (it == names.end() ? "" : it->second);
}

}  // namespace

std::string Tune::abc() const {
  std::string s = header + prompt + text;
  if (s.empty() || s.back() != '\n') s += "\n";
  return s;
}

LogitsProcessor bar_constraint_processor(std::shared_ptr<music::BarConstraint> constraint, size_t prompt_len,
                                         std::optional<music::TuneEndingOptions> ending,
                                         std::vector<int32_t> end_ids, std::shared_ptr<bool> ended_by_budget) {
  auto seen = std::make_shared<size_t>(prompt_len);
  const int64_t opening_bars = constraint->bars_closed();
  return [=](torch::Tensor& logits, const std::vector<int32_t>& history) {
    for (; *seen < history.size(); ++*seen) constraint->advance(history[*seen]);
    const auto vocab = static_cast<size_t>(logits.size(0));
    auto step = music::steer_step(*constraint, ending, static_cast<int64_t>(history.size() - prompt_len), opening_bars,
                                  end_ids, vocab);
    if (step.ended_by_budget && ended_by_budget) *ended_by_budget = true;
    for (size_t i = 0; i < vocab; ++i)  // one add: the biases where allowed, -inf elsewhere
      if (!step.allowed[i]) step.bias[i] = -std::numeric_limits<float>::infinity();
    logits.add_(torch::from_blob(step.bias.data(), {static_cast<int64_t>(vocab)}, torch::kFloat)
                    .to(logits.device(), logits.scalar_type()));
  };
}

TuneMaker::TuneMaker(EdgeClient& client, const music::MusicModelSpec& spec, const TuneRequest& req)
    : client_(client), spec_(spec), req_(req), opts_(music::check_music_options(spec, req.options)) {
  if (req_.title.find_first_of("\r\n") != std::string::npos || req_.title.size() > 200)
    throw music::AbcFieldError("title", "the title must be one line of at most 200 characters");
  if (req_.tempo_bpm < 0 || req_.tempo_bpm > 400)
    throw music::AbcFieldError("tempo", "tempo " + std::to_string(req_.tempo_bpm) + ": give 1 to 400 beats per minute");
  if (req_.max_identical_bars < 0) throw std::invalid_argument("max identical bars must be >= 0 (0 turns the guard off)");
  if (!client.tokenizer()) throw std::invalid_argument("this model has no tokenizer.json: it cannot write tunes as text");
  prompt_ = opts_.prompt + req_.opening;
  const auto& tok = *client.tokenizer();
  const int64_t vocab = client.checkpoint().config().vocab_size;
  token_texts_.resize(static_cast<size_t>(vocab));
  for (int32_t id = 0; id < vocab && id < tok.vocab_size(); ++id)
    if (!tok.is_special(id)) token_texts_[id] = tok.decode({id}, true);
}

std::string TuneMaker::header(int index, uint64_t seed) const {
  std::string title = req_.title;
  if (title.empty()) {
    std::string r = opts_.rhythm().empty() ? "tune" : opts_.rhythm();
    r[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(r[0])));
    title = r + " in " + key_words(opts_.key) + " (duet seed " + std::to_string(seed) + ")";
  }
  std::string h = "X:" + std::to_string(index) + "\nT:" + title + "\n";
  const std::string q = music::tempo_field(spec_, opts_, req_.tempo_bpm);
  if (!q.empty()) h += q + "\n";
  h += "% duet-edge: seed " + std::to_string(seed) + ", bar constraint " + (req_.constrain ? "on" : "off") +
       (req_.constrain && !req_.ending_push ? ", no ending push" : "") + "\n";
  return h;
}

TuneSteering TuneMaker::steer(GenerationOptions& g, size_t prompt_len) const {
  TuneSteering s;
  s.ended_by_budget = std::make_shared<bool>(false);
  if (!req_.constrain) return s;
  s.constraint = std::make_shared<music::BarConstraint>(music::constraint_options(spec_, opts_, req_.max_identical_bars),
                                                        token_texts_, g.stop_ids);
  s.constraint->observe(req_.opening);
  std::optional<music::TuneEndingOptions> ending;
  if (req_.ending_push && !g.stop_ids.empty()) {  // no end token (--ignore-eos): nothing to push towards
    int64_t budget = g.max_new_tokens;
    if (g.max_positions > 0) budget = std::min<int64_t>(budget, g.max_positions - static_cast<int64_t>(prompt_len));
    ending = music::ending_options(spec_, opts_, budget, g.sampling.seed);
  }
  g.logits_processor = bar_constraint_processor(s.constraint, prompt_len, ending, g.stop_ids, s.ended_by_budget);
  return s;
}

Tune TuneMaker::tune_of(int index, uint64_t seed, const GenerationOutcome& out, int64_t max_new_tokens,
                        int64_t max_positions) const {
  Tune t;
  t.index = index;
  t.seed = seed;
  t.header = header(index, seed);
  t.title = t.header.substr(t.header.find("T:") + 2, t.header.find('\n', t.header.find("T:")) - t.header.find("T:") - 2);
  t.prompt = prompt_;
  t.text = client_.tokenizer()->decode(out.tokens, true);
  t.ended_by_budget = out.stop == StopReason::ending_rule;
  t.relaxed_steps = out.relaxed_steps;
  const std::string which = "tune " + std::to_string(index) + " ('" + t.title + "')";
  if (out.loop_reason == "max_positions")
    t.warnings.push_back(which + " reached the model's context limit (" + std::to_string(max_positions) +
                         " positions, prompt included) before it ended: it stops mid-tune");
  else if (out.loop_reason == "max_new_tokens")
    t.warnings.push_back(which + " used the whole token budget (" + std::to_string(max_new_tokens) +
                         " tokens) before it ended: it stops mid-tune; raise -n");
  if (t.ended_by_budget)
    t.warnings.push_back(which + " was ended at a bar line because the token budget or the context was about to run "
                         "out (raise -n for a longer tune)");
  if (t.relaxed_steps > 0)
    t.warnings.push_back(which + ": the bar constraint found no allowed token " + std::to_string(t.relaxed_steps) +
                         " time(s) (the opening broke its rules) and sampled unconstrained there");
  return t;
}

}  // namespace duet::edge
