#pragma once
// Chat prompts for the template forms duet knows, detected from the chat_template string in a
// model's tokenizer_config.json and written out in C++ (no Jinja): Llama 3, ChatML (Qwen, with
// its default system prompt when the template has one), Mistral ([INST]), Gemma and Phi-3.
// Each form renders what transformers' apply_chat_template(messages, add_generation_prompt=True)
// renders for the reference template of that form (tests/fixtures/chat_templates.json, made by
// scripts/make_chat_template_fixtures.py). Anything else is refused with a sentence saying so.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "edge/server/openai_json.hpp"

namespace duet::edge::server {

enum class ChatForm { llama3, chatml, mistral, gemma, phi3 };
const char* to_string(ChatForm f);

class ChatTemplate {
 public:
  // From tokenizer_config.json's contents; `origin` names it in errors. Throws
  // std::invalid_argument when it has no chat_template or one of a form duet does not know.
  static ChatTemplate from_config(const nlohmann::json& cfg, const std::string& origin);
  // <dir>/tokenizer_config.json; throws as from_config, and when the file is missing.
  static ChatTemplate from_model_dir(const std::string& dir);

  // The prompt text, special tokens written out (encode it without adding special tokens), ending
  // with the assistant's turn opened. Throws std::invalid_argument for a conversation the
  // template refuses (e.g. a system message for Gemma, roles not alternating for Mistral).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  ChatForm form() const { return form_; }
  // The text that ends an assistant turn (<|eot_id|>, <|im_end|>, ...): a stop token.
  std::string end_of_turn() const;
  const std::string& bos() const { return bos_; }
  const std::string& eos() const { return eos_; }

 private:
  ChatForm form_ = ChatForm::chatml;
  std::string bos_, eos_;
  std::optional<std::string> default_system_;  // ChatML templates that add one (Qwen2)
};

}  // namespace duet::edge::server
