#pragma once
// A small exact fraction for note lengths (whole note = 1). Values stay tiny (bar lengths, ABC
// note lengths), so int64 never comes near overflowing.
#include <cstdint>
#include <numeric>
#include <string>

namespace duet::music {

struct Rational {
  int64_t num = 0, den = 1;
  Rational() = default;
  Rational(int64_t n, int64_t d = 1) : num(n), den(d) {  // NOLINT: implicit from an integer is intended
    if (den < 0) num = -num, den = -den;
    const int64_t g = std::gcd(num < 0 ? -num : num, den);
    if (g > 1) num /= g, den /= g;
  }
  friend Rational operator+(Rational a, Rational b) { return {a.num * b.den + b.num * a.den, a.den * b.den}; }
  friend Rational operator-(Rational a, Rational b) { return {a.num * b.den - b.num * a.den, a.den * b.den}; }
  friend Rational operator*(Rational a, Rational b) { return {a.num * b.num, a.den * b.den}; }
  friend Rational operator/(Rational a, Rational b) { return {a.num * b.den, a.den * b.num}; }
  friend bool operator==(Rational a, Rational b) { return a.num == b.num && a.den == b.den; }
  friend bool operator!=(Rational a, Rational b) { return !(a == b); }
  friend bool operator<(Rational a, Rational b) { return a.num * b.den < b.num * a.den; }
  friend bool operator<=(Rational a, Rational b) { return !(b < a); }
  friend bool operator>(Rational a, Rational b) { return b < a; }
  friend bool operator>=(Rational a, Rational b) { return !(a < b); }
  // true when this is a whole multiple of `step` (step > 0)
  bool multiple_of(Rational step) const { return (*this / step).den == 1; }
  std::string str() const { return std::to_string(num) + "/" + std::to_string(den); }
};

}  // namespace duet::music
