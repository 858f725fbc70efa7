#include "edge/server/note_samples.hpp"

#include <cmath>
#include <cstdint>
#include <vector>

namespace duet::edge::server {

std::optional<int> note_name_to_midi(const std::string& name) {
  static const int base[7] = {9, 11, 0, 2, 4, 5, 7};  // A B C D E F G within the octave
  if (name.size() < 2 || name[0] < 'A' || name[0] > 'G') return std::nullopt;
  int pitch = base[name[0] - 'A'];
  size_t i = 1;
  if (name[i] == 'b') --pitch, ++i;
  else if (name[i] == '#') ++pitch, ++i;
  if (i + 1 != name.size() || name[i] < '0' || name[i] > '8') return std::nullopt;
  return pitch + 12 * (name[i] - '0' + 1);
}

std::string note_wav(int midi_pitch) {
  const int rate = 22050, n = rate * 3 / 2;
  const double f = 440.0 * std::pow(2.0, (midi_pitch - 69) / 12.0);
  const double pi = 3.14159265358979323846;
  std::vector<int16_t> pcm(n);
  for (int i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / rate;
    // a few harmonics, higher ones dying faster; a 5 ms attack to avoid a click
    double v = 0;
    for (int h = 1; h <= 4; ++h) {
      if (f * h >= rate / 2) break;
      v += std::sin(2 * pi * f * h * t) * std::exp(-t * (2.5 + 1.5 * h)) / (h * h);
    }
    v *= std::min(1.0, t / 0.005) * 0.6;
    pcm[i] = static_cast<int16_t>(std::lround(std::max(-1.0, std::min(1.0, v)) * 32767));
  }
  std::string w;
  auto u32 = [&](uint32_t x) { for (int k = 0; k < 4; ++k) w.push_back(static_cast<char>((x >> (8 * k)) & 0xff)); };
  auto u16 = [&](uint16_t x) { for (int k = 0; k < 2; ++k) w.push_back(static_cast<char>((x >> (8 * k)) & 0xff)); };
  const uint32_t bytes = static_cast<uint32_t>(n * 2);
  w += "RIFF";
  u32(36 + bytes);
  w += "WAVEfmt ";
  u32(16);
  u16(1);  // PCM
  u16(1);  // mono
  u32(rate);
  u32(rate * 2);
  u16(2);
  u16(16);
  w += "data";
  u32(bytes);
  for (int16_t s : pcm) u16(static_cast<uint16_t>(s));
  return w;
}

}  // namespace duet::edge::server
