#include "edge/music/music_options.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "edge/music/corpus_passages.hpp"

namespace duet::music {

std::optional<MusicModelSpec> MusicModelSpec::from_model_dir(const std::string& dir) {
  const std::string path = dir + "/duet.json";
  std::ifstream in(path);
  if (!in) return std::nullopt;
  MusicModelSpec s;
  try {
    auto j = nlohmann::json::parse(in);
    s.prompt_template = j.at("prompt_template").get<std::string>();
    auto list = [&](const char* name, std::vector<std::string>& out) {
      if (j.contains(name)) out = j[name].get<std::vector<std::string>>();
    };
    list("styles", s.styles);
    list("meters", s.meters);
    list("units", s.units);
    list("keys", s.keys);
    if (j.contains("defaults"))
      for (auto& [k, v] : j["defaults"].items())
        if (v.is_string()) s.defaults[k] = v.get<std::string>();
    if (j.contains("style_defaults"))
      for (auto& [style, v] : j["style_defaults"].items()) {
        StyleStats st;
        st.meter = v.at("meter").get<std::string>();
        st.unit = v.at("unit").get<std::string>();
        st.key = v.at("key").get<std::string>();
        st.tunes = v.value("tunes", int64_t{0});
        st.bars_p10 = v.value("bars_p10", int64_t{0});
        st.bars_p50 = v.value("bars_p50", int64_t{0});
        st.bars_p90 = v.value("bars_p90", int64_t{0});
        st.max_bar_repeats = v.value("max_bar_repeats", int64_t{0});
        st.max_cell_repeats = v.value("max_cell_repeats", int64_t{0});
        st.max_bar_share = v.value("max_bar_share", 0.0);
        st.max_repeat_share = v.value("max_repeat_share", 0.0);
        st.tonic_endings = v.value("tonic_endings", 0.0);
        if (v.contains("combos")) st.combos = v["combos"].get<std::map<std::string, int64_t>>();
        s.style_stats[style] = st;
      }
    if (j.contains("sampling"))
      for (auto& [k, v] : j["sampling"].items())
        if (v.is_number()) s.sampling[k] = v.get<double>();
    if (j.contains("tempos")) s.tempos = j["tempos"].get<std::map<std::string, int64_t>>();
    s.tempo_default = j.value("tempo_default", int64_t{0});
    if (j.contains("max_new_tokens")) s.max_new_tokens = j["max_new_tokens"].get<int64_t>();
    if (j.contains("corpus_passages")) {
      const auto name = j["corpus_passages"].get<std::string>();
      if (name.empty() || name.find('/') != std::string::npos || name.find("..") != std::string::npos)
        throw std::runtime_error("corpus_passages must name a file beside duet.json, not '" + name + "'");
      s.corpus_passages = CorpusPassages::load(dir + "/" + name);
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return s;
}

std::string MusicModelSpec::build(const std::string& style, const std::string& meter, const std::string& unit,
                                  const std::string& key) const {
  return check_music_options(*this, {style, meter, unit, key}).prompt;
}

std::string CheckedMusicOptions::rhythm() const {
  const auto dash = style.find('-');
  return dash == std::string::npos ? "" : style.substr(dash + 1);
}

CheckedMusicOptions check_music_options(const MusicModelSpec& spec, const MusicRequest& req) {
  auto fallback = [&](const char* name) {
    auto it = spec.defaults.find(name);
    return it == spec.defaults.end() ? std::string() : it->second;
  };
  CheckedMusicOptions o;
  o.style = req.style.empty() ? fallback("style") : req.style;
  if (!spec.styles.empty() && std::find(spec.styles.begin(), spec.styles.end(), o.style) == spec.styles.end()) {
    std::string known;
    for (const auto& x : spec.styles) known += (known.empty() ? "" : ", ") + x;
    throw AbcFieldError("style", "unknown style '" + o.style + "'; this model knows: " + known);
  }
  const StyleStats* st = nullptr;
  if (auto it = spec.style_stats.find(o.style); it != spec.style_stats.end()) st = &it->second;

  o.meter = parse_meter(!req.meter.empty() ? req.meter : st ? st->meter : fallback("meter"));
  if (!req.unit.empty()) {
    o.unit = parse_unit(req.unit);
  } else {
    // the unit this style used most with this meter; else ABC's own default for the meter
    std::string best;
    int64_t best_n = 0;
    if (st)
      for (const auto& [combo, n] : st->combos)
        if (combo.rfind(o.meter.text + " ", 0) == 0 && n > best_n) best = combo.substr(o.meter.text.size() + 1), best_n = n;
    o.unit = !best.empty() ? parse_unit(best) : req.meter.empty() && !fallback("unit").empty() && !st
                                                    ? parse_unit(fallback("unit"))
                                                    : default_unit(o.meter);
  }
  o.key = parse_key(!req.key.empty() ? req.key : st ? st->key : fallback("key"));

  const std::string combo = o.meter.text + " " + o.unit_text();
  bool meter_seen = spec.meters.empty() || std::find(spec.meters.begin(), spec.meters.end(), o.meter.text) != spec.meters.end();
  for (const auto& [name, stats] : spec.style_stats)
    for (const auto& [c, n] : stats.combos) meter_seen = meter_seen || c.rfind(o.meter.text + " ", 0) == 0;
  if (!meter_seen) {
    o.warnings.push_back("meter " + o.meter.text + " was never in this model's training data: expect it to write " +
                         "bars of another meter (the bar constraint keeps them " + o.meter.text + ")");
  } else if (st && !st->combos.count(combo)) {
    std::string seen;
    int shown = 0;
    std::vector<std::pair<int64_t, std::string>> by_n;
    for (const auto& [c, n] : st->combos) by_n.emplace_back(-n, c);
    std::sort(by_n.begin(), by_n.end());
    for (const auto& [n, c] : by_n)
      if (shown++ < 3) seen += (seen.empty() ? "" : ", ") + ("M:" + c.substr(0, c.find(' ')) + " L:" + c.substr(c.find(' ') + 1)) +
                               " (" + std::to_string(-n) + " tunes)";
    o.warnings.push_back("style " + o.style + " was never trained with M:" + o.meter.text + " L:" + o.unit_text() +
                         "; its tunes use " + seen + ": expect bars of the wrong length without the bar constraint");
  }
  if (!spec.keys.empty() && std::find(spec.keys.begin(), spec.keys.end(), o.key.text) == spec.keys.end())
    o.warnings.push_back("key " + o.key.text + " is rare or absent in this model's training data: it may drift to a "
                         "key it knows");

  o.prompt = spec.prompt_template;
  auto fill = [&](const std::string& field, const std::string& value) {
    const std::string ph = "{" + field + "}";
    for (size_t at = o.prompt.find(ph); at != std::string::npos; at = o.prompt.find(ph, at + value.size()))
      o.prompt.replace(at, ph.size(), value);
  };
  fill("style", o.style);
  fill("meter", o.meter.text);
  fill("unit", o.unit_text());
  fill("key", o.key.text);
  return o;
}

Rational tempo_beat(const std::string& rhythm, const Meter& m) {
  if (m.compound()) return {3, m.beat_unit};  // 6/8, 9/8, 12/8: a dotted beat (3/8)
  // reels, hornpipes and strathspeys are danced two beats a bar: a half note in 4/4 and 2/2, a
  // quarter in 2/4 (where the corpus writes them in 1/16s)
  const bool in_two = rhythm == "reel" || rhythm == "hornpipe" || rhythm == "strathspey";
  if (in_two && m.beats % 2 == 0) return {m.beats / 2, m.beat_unit};
  return {1, m.beat_unit};
}

std::string tempo_field(const MusicModelSpec& spec, const CheckedMusicOptions& o, int64_t bpm) {
  if (bpm <= 0) {
    auto it = spec.tempos.find(o.rhythm());
    bpm = it != spec.tempos.end() ? it->second : spec.tempo_default;
  }
  if (bpm <= 0) return "";
  return "Q:" + tempo_beat(o.rhythm(), o.meter).str() + "=" + std::to_string(bpm);
}

}  // namespace duet::music
