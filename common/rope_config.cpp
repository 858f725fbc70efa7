#include "common/rope_config.hpp"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace duet {

const char* rope_type_name(RopeType t) {
  switch (t) {
    case RopeType::none: return "none";
    case RopeType::default_: return "default";
    case RopeType::linear: return "linear";
    case RopeType::dynamic: return "dynamic";
    case RopeType::yarn: return "yarn";
    case RopeType::longrope: return "longrope";
    case RopeType::llama3: return "llama3";
  }
  return "?";
}

int64_t RopeSpec::rotary_dim(int64_t head_dim) const {
  return static_cast<int64_t>(static_cast<double>(head_dim) * partial_rotary_factor);
}

bool RopeSpec::operator==(const RopeSpec& o) const {
  return type == o.type && theta == o.theta && partial_rotary_factor == o.partial_rotary_factor && factor == o.factor &&
         original_max_positions == o.original_max_positions && attention_factor == o.attention_factor &&
         beta_fast == o.beta_fast && beta_slow == o.beta_slow && truncate == o.truncate &&
         low_freq_factor == o.low_freq_factor && high_freq_factor == o.high_freq_factor &&
         short_factor == o.short_factor && long_factor == o.long_factor;
}

namespace {

using nlohmann::json;

struct Fields {
  const json& j;
  const std::string& origin;
  const std::string& where;

  std::runtime_error error(const std::string& key, const std::string& what) const {
    return std::runtime_error(origin + ": field '" + where + "." + key + "' " + what);
  }
  bool has(const std::string& k) const { return j.contains(k) && !j.at(k).is_null(); }
  double number(const std::string& k) const {
    if (!has(k)) throw error(k, "is missing (needed by this rope_type)");
    if (!j.at(k).is_number()) throw error(k, "must be a number");
    return j.at(k).get<double>();
  }
  double number_or(const std::string& k, double fallback) const { return has(k) ? number(k) : fallback; }
  double positive(const std::string& k) const {
    const double v = number(k);
    if (!(v > 0) || !std::isfinite(v)) throw error(k, "must be a positive number");
    return v;
  }
  std::vector<double> list(const std::string& k, size_t n) const {
    if (!has(k)) throw error(k, "is missing (needed by rope_type 'longrope')");
    const json& v = j.at(k);
    if (!v.is_array() || v.size() != n)
      throw error(k, "must be a list of " + std::to_string(n) + " numbers (one per rotated frequency)");
    std::vector<double> out;
    for (const auto& x : v) {
      if (!x.is_number() || !(x.get<double>() > 0)) throw error(k, "must hold positive numbers");
      out.push_back(x.get<double>());
    }
    return out;
  }
};

// transformers' yarn get_mscale
double yarn_mscale(double scale, double m) { return scale <= 1 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }

}  // namespace

RopeSpec parse_rope_spec(const json& obj, double theta, int64_t head_dim, int64_t max_positions,
                         int64_t original_max_positions, const std::string& origin, const std::string& where) {
  if (!obj.is_object()) throw std::runtime_error(origin + ": field '" + where + "' must be an object");
  Fields f{obj, origin, where};
  static const std::set<std::string> known = {
      "rope_type", "type", "rope_theta", "partial_rotary_factor", "factor", "original_max_position_embeddings",
      "attention_factor", "beta_fast", "beta_slow", "mscale", "mscale_all_dim", "truncate", "short_factor",
      "long_factor", "low_freq_factor", "high_freq_factor"};
  for (auto it = obj.begin(); it != obj.end(); ++it)
    if (!known.count(it.key()))
      throw f.error(it.key(), "is not supported (duet's RoPE knows rope_type default, linear, dynamic, yarn, "
                              "longrope and llama3 with their transformers parameters)");

  RopeSpec s;
  s.theta = f.has("rope_theta") ? f.positive("rope_theta") : theta;
  if (f.has("partial_rotary_factor")) {
    s.partial_rotary_factor = f.positive("partial_rotary_factor");
    if (s.partial_rotary_factor > 1) throw f.error("partial_rotary_factor", "must be at most 1");
  }
  std::string type = "default";
  const char* type_key = f.has("rope_type") ? "rope_type" : "type";
  if (f.has(type_key)) {
    if (!obj.at(type_key).is_string()) throw f.error(type_key, "must be a string");
    type = obj.at(type_key).get<std::string>();
  }
  const int64_t rot = s.rotary_dim(head_dim);
  if (rot < 2 || rot % 2 != 0)
    throw f.error("partial_rotary_factor", "gives " + std::to_string(rot) + " rotated dimensions of head_dim " +
                                               std::to_string(head_dim) + "; an even number of at least 2 is needed");
  // pretraining context: a top-level original_max_position_embeddings wins (transformers' Phi-3 rule)
  auto original = [&]() -> int64_t {
    if (original_max_positions > 0) return original_max_positions;
    if (!f.has("original_max_position_embeddings")) return max_positions;
    const double v = f.positive("original_max_position_embeddings");
    return static_cast<int64_t>(v);
  };
  if (type == "default") {
    s.type = RopeType::default_;
  } else if (type == "linear") {
    s.type = RopeType::linear;
    s.factor = f.positive("factor");
  } else if (type == "dynamic") {
    s.type = RopeType::dynamic;
    s.factor = f.positive("factor");
    s.original_max_positions = max_positions;  // transformers scales past max_position_embeddings
  } else if (type == "yarn") {
    s.type = RopeType::yarn;
    s.original_max_positions = original();
    s.factor = f.has("factor") ? f.positive("factor") : double(max_positions) / double(s.original_max_positions);
    if (f.has("attention_factor")) {
      s.attention_factor = f.positive("attention_factor");
    } else {
      const double m = f.number_or("mscale", 0), mad = f.number_or("mscale_all_dim", 0);
      s.attention_factor = (m != 0 && mad != 0) ? yarn_mscale(s.factor, m) / yarn_mscale(s.factor, mad)
                                                : yarn_mscale(s.factor, 1.0);
    }
    // transformers: `get("beta_fast") or 32` (0 counts as unset)
    s.beta_fast = f.number_or("beta_fast", 0) != 0 ? f.number("beta_fast") : 32.0;
    s.beta_slow = f.number_or("beta_slow", 0) != 0 ? f.number("beta_slow") : 1.0;
    if (f.has("truncate")) {
      if (!obj.at("truncate").is_boolean()) throw f.error("truncate", "must be true or false");
      s.truncate = obj.at("truncate").get<bool>();
    }
  } else if (type == "longrope") {
    s.type = RopeType::longrope;
    s.original_max_positions = original();
    s.short_factor = f.list("short_factor", static_cast<size_t>(rot / 2));
    s.long_factor = f.list("long_factor", static_cast<size_t>(rot / 2));
    s.factor = f.has("factor") ? f.positive("factor") : double(max_positions) / double(s.original_max_positions);
    if (f.has("attention_factor"))
      s.attention_factor = f.positive("attention_factor");
    else
      s.attention_factor =
          s.factor <= 1.0 ? 1.0 : std::sqrt(1 + std::log(s.factor) / std::log(double(s.original_max_positions)));
  } else if (type == "llama3") {
    s.type = RopeType::llama3;
    s.factor = f.positive("factor");
    s.low_freq_factor = f.positive("low_freq_factor");
    s.high_freq_factor = f.positive("high_freq_factor");
    if (s.high_freq_factor <= s.low_freq_factor)
      throw f.error("high_freq_factor", "must be larger than low_freq_factor");
    s.original_max_positions = original();
  } else {
    throw f.error(type_key, "is '" + type + "'; supported: default, linear, dynamic, yarn, longrope, llama3");
  }
  return s;
}

int64_t rope_context_limit(const RopeSpec& s, int64_t max_positions) {
  if (s.type == RopeType::dynamic || s.type == RopeType::yarn) {
    const double extended = std::floor(s.factor * double(s.original_max_positions));
    if (extended > double(max_positions) && extended < 1e9) return static_cast<int64_t>(extended);
  }
  return max_positions;
}

}  // namespace duet
