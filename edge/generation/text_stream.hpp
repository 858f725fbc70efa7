#pragma once
// Generated token ids turned into the text a client may see, as they come: complete UTF-8 only
// (StreamDecoder), special tokens skipped, and OpenAI's stop strings applied: text that could be
// the start of a stop string is held back until it is clear, and once one appears the text ends
// just before it.
#include <cstdint>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace duet::edge {

class TextStream {
 public:
  TextStream(const duet::tokenizer::Tokenizer& tok, std::vector<std::string> stops);
  // Text that is now safe to show (may be empty); after a stop string, stopped() is true and
  // later pushes return nothing.
  std::string push(int32_t id);
  // At the end: what was held back (nothing after a stop string).
  std::string finish();
  bool stopped() const { return stopped_; }
  const std::string& text() const { return shown_; }  // everything returned so far

 private:
  std::string release(bool at_end);
  duet::tokenizer::StreamDecoder decoder_;
  std::vector<std::string> stops_;
  std::string pending_;  // decoded, not yet shown
  std::string shown_;
  bool stopped_ = false;
};

}  // namespace duet::edge
