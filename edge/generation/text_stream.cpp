#include "edge/generation/text_stream.hpp"

#include <algorithm>

namespace duet::edge {

TextStream::TextStream(const duet::tokenizer::Tokenizer& tok, std::vector<std::string> stops)
    : decoder_(tok, /*skip_special_tokens=*/true), stops_(std::move(stops)) {}

std::string TextStream::push(int32_t id) {
  if (stopped_) return "";
  pending_ += decoder_.push(id);
  return release(false);
}

std::string TextStream::finish() {
  if (stopped_) return "";
  pending_ += decoder_.flush();
  return release(true);
}

std::string TextStream::release(bool at_end) {
  // the earliest complete stop string ends the text
  size_t cut = std::string::npos;
  for (const auto& s : stops_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, cut);
    pending_.clear();
    shown_ += out;
    return out;
  }
  // hold back the longest tail that is the start of some stop string
  size_t keep = 0;
  if (!at_end)
    for (const auto& s : stops_)
      for (size_t n = std::min(s.size() - 1, pending_.size()); n > keep; --n)
        if (pending_.compare(pending_.size() - n, n, s, 0, n) == 0) {
          keep = n;
          break;
        }
  std::string out = pending_.substr(0, pending_.size() - keep);
  pending_.erase(0, pending_.size() - keep);
  shown_ += out;
  return out;
}

}  // namespace duet::edge
