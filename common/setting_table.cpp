#include "common/setting_table.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>
#include <stdexcept>
#include <type_traits>

namespace duet::settings {

namespace {

std::string shown(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e18) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream s;
  s << std::setprecision(15) << v;
  return s.str();
}

std::string range_of(const Rule& r) {
  const bool bounded = r.max != std::numeric_limits<double>::infinity();
  std::string s = r.min_open ? "above " + shown(r.min) : shown(r.min) + (bounded ? " to " : " or more");
  if (bounded) s += (r.min_open ? " and at most " : "") + shown(r.max);
  if (*r.unit) s += std::string(" ") + r.unit;
  return s;
}

double number_of(const Value& v, const Rule& r, bool whole) {
  double d = 0;
  if (auto* n = std::get_if<int64_t>(&v)) d = static_cast<double>(*n);
  else if (auto* x = std::get_if<double>(&v); x && !whole) d = *x;
  else throw std::invalid_argument(whole ? "must be a whole number, " + range_of(r) : "must be a number, " + range_of(r));
  if (!(r.min_open ? d > r.min : d >= r.min) || d > r.max)
    throw std::invalid_argument("must be " + range_of(r) + ", not " + shown(d));
  return d;
}

template <class T>
T count_of(const Value& v, const Rule& r) {
  const double d = number_of(v, r, true);
  const int64_t n = std::get<int64_t>(v);
  if (d > static_cast<double>(std::numeric_limits<T>::max()) ||
      (n > 0 && static_cast<uint64_t>(n) > std::numeric_limits<T>::max()))
    throw std::invalid_argument("must be at most " + std::to_string(std::numeric_limits<T>::max()) + ", not " +
                                std::to_string(n));
  return static_cast<T>(n);
}

}  // namespace

void set_value(Slot slot, const Rule& rule, const Value& v, const std::filesystem::path& base) {
  std::visit(
      [&](auto* out) {
        using T = std::remove_pointer_t<decltype(out)>;
        if constexpr (std::is_same_v<T, std::string>) {
          const std::string* text = std::get_if<std::string>(&v);
          if (!text) throw std::invalid_argument("must be a string");
          const bool relative = rule.path && !base.empty() && !text->empty() && std::filesystem::path(*text).is_relative();
          *out = relative ? (base / *text).lexically_normal().string() : *text;
        } else if constexpr (std::is_same_v<T, bool>) {
          const bool* b = std::get_if<bool>(&v);
          if (!b) throw std::invalid_argument("must be true or false");
          *out = *b;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          const auto* list = std::get_if<std::vector<std::string>>(&v);
          if (!list) throw std::invalid_argument("must be an array of strings");
          if (rule.append) out->insert(out->end(), list->begin(), list->end());
          else *out = *list;
        } else if constexpr (std::is_same_v<T, double> || std::is_same_v<T, std::optional<double>>) {
          *out = number_of(v, rule, false);
        } else if constexpr (std::is_same_v<T, std::optional<uint32_t>>) {
          *out = count_of<uint32_t>(v, rule);
        } else {
          *out = count_of<T>(v, rule);
        }
      },
      slot);
}

namespace {
bool wants_whole(Slot slot) {
  return !std::holds_alternative<double*>(slot) && !std::holds_alternative<std::optional<double>*>(slot);
}

}  // namespace

void set_text(Slot slot, const Rule& rule, const std::string& text) {
  Value v = text;
  if (std::holds_alternative<bool*>(slot)) {
    if (text != "true" && text != "false") throw std::invalid_argument("must be true or false, not '" + text + "'");
    v = text == "true";
  } else if (std::holds_alternative<std::vector<std::string>*>(slot)) {
    std::vector<std::string> items;
    if (rule.append) items.push_back(text);
    else {
      std::stringstream ss(text);
      for (std::string item; std::getline(ss, item, ',');) items.push_back(item);
    }
    v = items;
  } else if (!std::holds_alternative<std::string*>(slot)) {
    const bool whole = wants_whole(slot);
    size_t used = 0;
    try {
      if (whole) v = static_cast<int64_t>(std::stoll(text, &used));
      else v = std::stod(text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != text.size())
      throw std::invalid_argument(std::string(whole ? "must be a whole number" : "must be a number") + ", not '" + text + "'");
  }
  set_value(slot, rule, v, {});
}

}  // namespace duet::settings
