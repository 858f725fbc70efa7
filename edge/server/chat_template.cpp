#include "edge/server/chat_template.hpp"

#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>

namespace duet::edge::server {

using nlohmann::json;

const char* to_string(ChatForm f) {
  switch (f) {
    case ChatForm::llama3: return "Llama 3";
    case ChatForm::chatml: return "ChatML";
    case ChatForm::mistral: return "Mistral";
    case ChatForm::gemma: return "Gemma";
    case ChatForm::phi3: return "Phi-3";
  }
  return "?";
}

namespace {

bool has(const std::string& s, const char* part) { return s.find(part) != std::string::npos; }

// bos_token / eos_token: a string, or an AddedToken object with "content"
std::string token_text(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return "";
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

// Jinja's trim: Python's str.strip()
std::string trim(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  const size_t a = s.find_first_not_of(ws);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(ws) - a + 1);
}

void alternate(const std::vector<ChatMessage>& m, size_t first, const char* form) {
  for (size_t i = first; i < m.size(); ++i)
    if ((m[i].role == "user") != ((i - first) % 2 == 0))
      throw std::invalid_argument(std::string("the ") + form +
                                  " chat template needs roles that alternate user/assistant/user/..., starting "
                                  "with user; message " + std::to_string(i) + " is '" + m[i].role + "'");
}

}  // namespace

ChatTemplate ChatTemplate::from_config(const json& cfg, const std::string& origin) {
  std::string tpl;
  if (cfg.contains("chat_template")) {
    const json& t = cfg["chat_template"];
    if (t.is_string()) tpl = t.get<std::string>();
    // several named templates: the "default" one
    if (t.is_array())
      for (const auto& e : t)
        if (e.is_object() && e.value("name", "") == "default" && e.contains("template") && e["template"].is_string())
          tpl = e["template"].get<std::string>();
  }
  if (tpl.empty())
    throw std::invalid_argument(origin + " has no chat_template: this model has no chat format; use "
                                "/v1/completions with the prompt written out");
  ChatTemplate c;
  c.bos_ = token_text(cfg, "bos_token");
  c.eos_ = token_text(cfg, "eos_token");
  if (has(tpl, "<|start_header_id|>") && has(tpl, "<|eot_id|>")) {
    c.form_ = ChatForm::llama3;
  } else if (has(tpl, "<|im_start|>") && has(tpl, "<|im_end|>")) {
    c.form_ = ChatForm::chatml;
    // Qwen2's template opens with a system turn of its own when the conversation has none
    static const std::regex def(R"('<\|im_start\|>system(?:\\n|\n)([^'{}]*?)<\|im_end\|>(?:\\n|\n)')");
    std::smatch m;
    if (std::regex_search(tpl, m, def) && has(tpl, "messages[0]['role'] != 'system'")) {
      std::string s = m[1].str();
      for (size_t p; (p = s.find("\\n")) != std::string::npos;) s.replace(p, 2, "\n");
      c.default_system_ = s;
    }
  } else if (has(tpl, "<start_of_turn>") && has(tpl, "<end_of_turn>")) {
    c.form_ = ChatForm::gemma;
  } else if (has(tpl, "<|user|>") && has(tpl, "<|assistant|>") && has(tpl, "<|end|>")) {
    c.form_ = ChatForm::phi3;
  } else if (has(tpl, "[INST]") && has(tpl, "[/INST]")) {
    c.form_ = ChatForm::mistral;
  } else {
    throw std::invalid_argument(origin + ": its chat_template is none of the forms duet knows (Llama 3, ChatML/Qwen, "
                                "Mistral, Gemma, Phi-3); use /v1/completions with the prompt written out");
  }
  return c;
}

ChatTemplate ChatTemplate::from_model_dir(const std::string& dir) {
  const std::string path = dir + "/tokenizer_config.json";
  std::ifstream f(path);
  if (!f) throw std::invalid_argument(path + " is missing: this model has no chat template; use /v1/completions");
  std::stringstream ss;
  ss << f.rdbuf();
  json cfg;
  try {
    cfg = json::parse(ss.str());
  } catch (const json::parse_error& e) {
    throw std::invalid_argument(path + " is not valid JSON: " + e.what());
  }
  return from_config(cfg, path);
}

std::string ChatTemplate::end_of_turn() const {
  switch (form_) {
    case ChatForm::llama3: return "<|eot_id|>";
    case ChatForm::chatml: return "<|im_end|>";
    case ChatForm::gemma: return "<end_of_turn>";
    case ChatForm::phi3: return "<|end|>";
    case ChatForm::mistral: return eos_;
  }
  return eos_;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& m, bool add_generation_prompt) const {
  std::string out;
  switch (form_) {
    case ChatForm::llama3:
      for (size_t i = 0; i < m.size(); ++i) {
        if (i == 0) out += bos_;
        out += "<|start_header_id|>" + m[i].role + "<|end_header_id|>\n\n" + trim(m[i].content) + "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatForm::chatml:
      if (default_system_ && (m.empty() || m[0].role != "system"))
        out += "<|im_start|>system\n" + *default_system_ + "<|im_end|>\n";
      for (const auto& msg : m) out += "<|im_start|>" + msg.role + "\n" + msg.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    case ChatForm::mistral:
      out += bos_;
      for (const auto& msg : m)
        if (msg.role == "system")
          throw std::invalid_argument("the Mistral chat template has no system role: put the instructions in the "
                                      "first user message");
      alternate(m, 0, "Mistral");
      for (const auto& msg : m)
        out += msg.role == "user" ? "[INST] " + msg.content + " [/INST]" : msg.content + eos_;
      break;
    case ChatForm::gemma:
      out += bos_;
      if (!m.empty() && m[0].role == "system")
        throw std::invalid_argument("the Gemma chat template has no system role: put the instructions in the first "
                                    "user message");
      alternate(m, 0, "Gemma");
      for (const auto& msg : m)
        out += "<start_of_turn>" + std::string(msg.role == "assistant" ? "model" : msg.role) + "\n" +
               trim(msg.content) + "<end_of_turn>\n";
      if (add_generation_prompt) out += "<start_of_turn>model\n";
      break;
    case ChatForm::phi3:
      for (const auto& msg : m) out += "<|" + msg.role + "|>\n" + msg.content + "<|end|>\n";
      out += add_generation_prompt ? "<|assistant|>\n" : eos_;
      break;
  }
  return out;
}

}  // namespace duet::edge::server
