// duet-edge serve's pieces that need neither LibTorch nor a socket: OpenAI request checks and
// reply shapes, SSE framing, stop strings over a token stream, chat templates against
// tests/fixtures/chat_templates.json, and the playback samples.
#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

#include "edge/server/chat_template.hpp"
#include "edge/server/note_samples.hpp"
#include "edge/server/openai_json.hpp"
#include "edge/server/sse.hpp"
#include "edge/generation/text_stream.hpp"

using namespace duet::edge::server;
using duet::edge::TextStream;
using nlohmann::json;

namespace {

std::string read(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "cannot read " << path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

ApiError refused(const std::string& body, bool chat = false) {
  try {
    parse_request(body, chat);
  } catch (const ApiError& e) {
    return e;
  }
  FAIL("accepted: " << body);
  return ApiError(0, "");
}

}  // namespace

TEST_CASE("OpenAI requests: fields read, duet's extras, defaults") {
  auto r = parse_request(R"({"model":"x","prompt":"X:1","max_tokens":5,"temperature":0.7,"top_p":0.9,
      "stop":["\n\n","END"],"seed":7,"stream":true,"stream_options":{"include_usage":true},"top_k":40,
      "repetition_penalty":1.1,"user":"ignored","n":1,"logprobs":null,"presence_penalty":0})",
                         false);
  CHECK(*r.prompt == "X:1");
  CHECK(*r.sampling.max_new_tokens == 5);
  CHECK(*r.sampling.temperature == doctest::Approx(0.7));
  CHECK(*r.sampling.top_p == doctest::Approx(0.9));
  CHECK(*r.sampling.top_k == 40);
  CHECK(*r.sampling.repetition_penalty == doctest::Approx(1.1));
  CHECK(*r.sampling.seed == 7);
  CHECK(r.stream);
  CHECK(r.include_usage);
  CHECK(r.stop == std::vector<std::string>{"\n\n", "END"});

  auto ids = parse_request(R"({"prompt":[1,2,3]})", false);
  CHECK(ids.prompt_ids == std::vector<int32_t>{1, 2, 3});
  CHECK_FALSE(ids.prompt.has_value());
  CHECK_FALSE(ids.sampling.max_new_tokens.has_value());
  CHECK(parse_request(R"({"prompt":["one"]})", false).prompt == "one");

  auto c = parse_request(R"({"messages":[{"role":"developer","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"hi "},{"type":"text","text":"there"}]}],
      "max_completion_tokens":9})",
                         true);
  REQUIRE(c.messages.size() == 2);
  CHECK(c.messages[0].role == "system");
  CHECK(c.messages[1].content == "hi there");
  CHECK(*c.sampling.max_new_tokens == 9);
}

TEST_CASE("OpenAI requests: refusals name the parameter, with status 400") {
  struct Case {
    const char* body;
    bool chat;
    const char* param;
  } cases[] = {
      {R"({"prompt":"a","n":2})", false, "n"},
      {R"({"prompt":"a","temperature":3})", false, "temperature"},
      {R"({"prompt":"a","temperature":"hot"})", false, "temperature"},
      {R"({"prompt":"a","max_tokens":0})", false, "max_tokens"},
      {R"({"prompt":"a","stop":["a","b","c","d","e"]})", false, "stop"},
      {R"({"prompt":"a","echo":true})", false, "echo"},
      {R"({"prompt":"a","logprobs":3})", false, "logprobs"},
      {R"({"prompt":"a","presence_penalty":0.5})", false, "presence_penalty"},
      {R"({"prompt":"a","logit_bias":{"1":5}})", false, "logit_bias"},
      {R"({"prompt":["a","b"]})", false, "prompt"},
      {R"({"prompt":[1,-2]})", false, "prompt"},
      {R"({"max_tokens":3})", false, "prompt"},
      {R"({"messages":[]})", true, "messages"},
      {R"({"messages":[{"role":"tool","content":"x"}]})", true, "messages[0].role"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})", true, "messages[0].content"},
      {R"({"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function"}]})", true, "tools"},
      {R"({"messages":[{"role":"user","content":"x"}],"response_format":{"type":"json_object"}})", true,
       "response_format"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.body);
    const ApiError e = refused(c.body, c.chat);
    DOCTEST_CHECK(e.status() == 400);
    DOCTEST_CHECK(e.param() == c.param);
    const json b = e.body();
    DOCTEST_CHECK(b["error"]["type"] == "invalid_request_error");
    DOCTEST_CHECK(b["error"]["param"] == c.param);
    DOCTEST_CHECK(b["error"]["message"].get<std::string>().size() > 10);
  }
  const ApiError bad_json = refused("{not json");
  CHECK(bad_json.status() == 400);
  CHECK(bad_json.body()["error"]["param"].is_null());
  CHECK(ApiError(401, "no key", "", "invalid_api_key").body()["error"]["type"] == "authentication_error");
  CHECK(ApiError(503, "down").type() == "server_error");
}

TEST_CASE("OpenAI replies and chunks have OpenAI's shape") {
  const Usage u{3, 4};
  auto b = completion_body("cmpl-1", 10, "m", "hi", "stop", u);
  CHECK(b["object"] == "text_completion");
  CHECK(b["choices"][0]["text"] == "hi");
  CHECK(b["choices"][0]["finish_reason"] == "stop");
  CHECK(b["usage"]["total_tokens"] == 7);
  auto cb = chat_body("chatcmpl-1", 10, "m", "hi", "length", u);
  CHECK(cb["object"] == "chat.completion");
  CHECK(cb["choices"][0]["message"] == json({{"role", "assistant"}, {"content", "hi"}}));
  auto first = chat_chunk("c", 1, "m", "", "", true);
  CHECK(first["object"] == "chat.completion.chunk");
  CHECK(first["choices"][0]["delta"] == json({{"role", "assistant"}, {"content", ""}}));
  CHECK(first["choices"][0]["finish_reason"].is_null());
  auto last = chat_chunk("c", 1, "m", "", "stop", false);
  CHECK(last["choices"][0]["delta"] == json::object());
  CHECK(last["choices"][0]["finish_reason"] == "stop");
  auto uc = usage_chunk(true, "c", 1, "m", u);
  CHECK(uc["choices"].empty());
  CHECK(uc["usage"]["completion_tokens"] == 4);
  CHECK(finish_reason("eos") == "stop");
  CHECK(finish_reason("stop") == "stop");
  CHECK(finish_reason("max_new_tokens") == "length");
  CHECK(finish_reason("max_positions") == "length");
  CHECK(new_completion_id(true).rfind("chatcmpl-", 0) == 0);
  CHECK(new_completion_id(false) != new_completion_id(false));
  CHECK(models_body("abc-folk", 5)["data"][0]["id"] == "abc-folk");
}

TEST_CASE("SSE: one data line per event, [DONE], a closed reader stays closed") {
  CHECK(sse_event(json{{"t", "a\nb"}}) == "data: {\"t\":\"a\\nb\"}\n\n");
  CHECK(std::string(sse_done()) == "data: [DONE]\n\n");
  std::string got;
  int calls = 0;
  SseWriter w([&](const std::string& s) {
    ++calls;
    got += s;
    return calls < 2;
  });
  CHECK(w.send(json(1)));
  CHECK_FALSE(w.done());
  CHECK_FALSE(w.send(json(2)));
  CHECK(calls == 2);
  CHECK(got == "data: 1\n\ndata: [DONE]\n\n");
}

TEST_CASE("stop strings over a token stream: held back while they may start, cut where they complete") {
  const auto tok = duet::tokenizer::Tokenizer::from_file(std::string(DUET_SOURCE_DIR) + "/models/abc-folk/tokenizer.json");
  auto run = [&](const std::string& text, std::vector<std::string> stops, std::vector<std::string>* deltas = nullptr) {
    TextStream ts(tok, std::move(stops));
    std::string out;
    for (int32_t id : tok.encode(text, false)) {
      const std::string d = ts.push(id);
      if (deltas) deltas->push_back(d);
      out += d;
      if (ts.stopped()) break;
    }
    out += ts.finish();
    REQUIRE(out == ts.text());
    return std::make_pair(out, ts.stopped());
  };
  CHECK(run("abc|def", {}) == std::make_pair(std::string("abc|def"), false));
  CHECK(run("abc|def", {"|d"}) == std::make_pair(std::string("abc"), true));
  CHECK(run("ab|c|de", {"|de", "zz"}) == std::make_pair(std::string("ab|c"), true));
  CHECK(run("abc|", {"|de"}) == std::make_pair(std::string("abc|"), false));  // released at the end
  std::vector<std::string> deltas;
  run("ab|dx", {"|de"}, &deltas);
  REQUIRE(deltas.size() == 5);
  CHECK(deltas[2] == "");    // "|" may start "|de": held
  CHECK(deltas[3] == "");    // "|d" too
  CHECK(deltas[4] == "|dx");  // not a stop after all
}

TEST_CASE("chat templates: every form renders what apply_chat_template renders (fixture)") {
  const json fx = json::parse(read(std::string(DUET_FIXTURES_DIR) + "/chat_templates.json"));
  INFO("fixture made by: " << fx["made_by"].get<std::string>());
  REQUIRE(fx["forms"].size() >= 5);
  int checked = 0;
  for (const auto& f : fx["forms"]) {
    CAPTURE(f["name"].get<std::string>());
    const ChatTemplate t = ChatTemplate::from_config(f["tokenizer_config"], "fixture");
    DOCTEST_CHECK(std::string(to_string(t.form())) == f["form"].get<std::string>());
    for (const auto& c : f["cases"]) {
      std::vector<ChatMessage> msgs;
      for (const auto& m : c["messages"]) msgs.push_back({m["role"], m["content"]});
      CAPTURE(c["messages"].dump());
      if (c.contains("error")) {
        DOCTEST_CHECK_THROWS_AS(t.render(msgs), std::invalid_argument);
      } else {
        DOCTEST_CHECK(t.render(msgs) == c["expected"].get<std::string>());
      }
      ++checked;
    }
  }
  CHECK(checked >= 30);
}

TEST_CASE("chat templates: end-of-turn tokens, named templates, and clear refusals") {
  auto form_of = [](const std::string& tpl) {
    return ChatTemplate::from_config(json{{"chat_template", tpl}, {"eos_token", "</s>"}}, "t");
  };
  CHECK(form_of("<|start_header_id|>x<|eot_id|>").end_of_turn() == "<|eot_id|>");
  CHECK(form_of("<|im_start|>x<|im_end|>").end_of_turn() == "<|im_end|>");
  CHECK(form_of("<start_of_turn>x<end_of_turn>").end_of_turn() == "<end_of_turn>");
  CHECK(form_of("<|user|><|assistant|><|end|>").end_of_turn() == "<|end|>");
  CHECK(form_of("[INST] x [/INST]").end_of_turn() == "</s>");
  // a list of named templates: the default one; AddedToken objects for bos/eos
  const auto named = ChatTemplate::from_config(
      json{{"chat_template", json::array({{{"name", "tool_use"}, {"template", "{{ tools }}"}},
                                          {{"name", "default"}, {"template", "<|im_start|><|im_end|>"}}})},
           {"bos_token", {{"content", "<s>"}}}},
      "t");
  CHECK(named.form() == ChatForm::chatml);
  CHECK(named.bos() == "<s>");
  CHECK_THROWS_WITH_AS(form_of("{% for m in messages %}{{ m.content }}{% endfor %}"),
                       doctest::Contains("none of the forms duet knows"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(ChatTemplate::from_config(json{{"eos_token", "</s>"}}, "cfg.json"),
                       doctest::Contains("cfg.json has no chat_template"), std::invalid_argument);
  // the bundled music model has none: the server says so on /v1/chat/completions
  CHECK_THROWS_AS(ChatTemplate::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk"),
                  std::invalid_argument);
}

TEST_CASE("playback samples: note names as abcjs writes them, WAV files") {
  CHECK(note_name_to_midi("C4") == 60);
  CHECK(note_name_to_midi("A4") == 69);
  CHECK(note_name_to_midi("Bb0") == 22);
  CHECK(note_name_to_midi("Db5") == 73);
  CHECK_FALSE(note_name_to_midi("H4").has_value());
  CHECK_FALSE(note_name_to_midi("C").has_value());
  CHECK_FALSE(note_name_to_midi("C44").has_value());
  const std::string w = note_wav(69);
  REQUIRE(w.size() > 44);
  CHECK(w.compare(0, 4, "RIFF") == 0);
  CHECK(w.compare(8, 8, "WAVEfmt ") == 0);
  CHECK(w.compare(36, 4, "data") == 0);
}
