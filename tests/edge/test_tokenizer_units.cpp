// Error handling of Tokenizer loading, and the Unicode helpers underneath.
#include <doctest/doctest.h>

#include <string>

#include "tokenizer/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

using duet::tokenizer::Tokenizer;
using duet::tokenizer::TokenizerError;
namespace unicode = duet::tokenizer::unicode;

namespace {

// A minimal BPE tokenizer.json with the given extra sections spliced in.
std::string tokenizer_json(const std::string& extra, const std::string& model_type = "BPE") {
  return R"({"version":"1.0","added_tokens":[],)" + extra +
         R"("model":{"type":")" + model_type +
         R"(","vocab":{"a":0,"b":1,"ab":2},"merges":["a b"]}})";
}

// The message of the TokenizerError `fn` throws ("" when it throws none).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const TokenizerError& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("a minimal tokenizer.json works") {
  const Tokenizer tok = Tokenizer::from_json(tokenizer_json(""));
  CHECK(tok.encode("abab") == std::vector<std::int32_t>{2, 2});
  CHECK(tok.encode("ba") == std::vector<std::int32_t>{1, 0});
  CHECK(tok.encode("axb") == std::vector<std::int32_t>{2});  // no unk_token: x dropped, like HF
  CHECK(tok.decode({2, 0}) == "ab a");                          // no decoder: joined by spaces
  CHECK(tok.vocab_size() == 3);
  CHECK_FALSE(tok.bos_id().has_value());
  CHECK_THROWS_AS(tok.encode(std::string("a\xFF")), std::invalid_argument);
}

TEST_CASE("loading errors name the file and what is wrong") {
  std::string e = error_of([] { Tokenizer::from_file("/nonexistent/dir/tokenizer.json"); });
  CHECK(contains(e, "/nonexistent/dir/tokenizer.json"));
  CHECK(contains(e, "cannot open"));

  e = error_of([] { Tokenizer::from_json("{\"model\": {", "bad.json"); });
  CHECK(contains(e, "bad.json"));
  CHECK(contains(e, "malformed JSON"));

  e = error_of([] { Tokenizer::from_json("[1, 2]", "array.json"); });
  CHECK(contains(e, "not a JSON object"));

  e = error_of([] { Tokenizer::from_json("{\"version\": \"1.0\"}", "nomodel.json"); });
  CHECK(contains(e, "no \"model\""));

  e = error_of([] { Tokenizer::from_json(tokenizer_json("", "WordPiece"), "wp.json"); });
  CHECK(contains(e, "wp.json"));
  CHECK(contains(e, "unsupported model \"WordPiece\""));

  e = error_of([] { Tokenizer::from_json(tokenizer_json("", "Unigram"), "u.json"); });
  CHECK(contains(e, "unsupported model \"Unigram\""));

  e = error_of([] {
    Tokenizer::from_json(tokenizer_json(R"("pre_tokenizer":{"type":"Whitespace"},)"), "ws.json");
  });
  CHECK(contains(e, "unsupported pre_tokenizer \"Whitespace\""));

  e = error_of([] {
    Tokenizer::from_json(tokenizer_json(R"("normalizer":{"type":"NFKC"},)"), "n.json");
  });
  CHECK(contains(e, "unsupported normalizer \"NFKC\""));

  e = error_of([] {
    Tokenizer::from_json(tokenizer_json(R"("decoder":{"type":"WordPiece","prefix":"##"},)"), "d.json");
  });
  CHECK(contains(e, "unsupported decoder \"WordPiece\""));

  e = error_of([] {
    Tokenizer::from_json(
        tokenizer_json(R"("pre_tokenizer":{"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false},)"),
        "re.json");
  });
  CHECK(contains(e, "regex this tokenizer does not implement"));

  e = error_of([] {
    Tokenizer::from_json(
        tokenizer_json(R"("normalizer":{"type":"Replace","pattern":{"Regex":" +"},"content":" "},)"), "r.json");
  });
  CHECK(contains(e, "Regex pattern"));

  e = error_of([] {
    Tokenizer::from_json(tokenizer_json(R"("post_processor":{"type":"Whatever"},)"), "p.json");
  });
  CHECK(contains(e, "unsupported post_processor \"Whatever\""));

  e = error_of([] {
    Tokenizer::from_json(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]}})", "m.json");
  });
  CHECK(contains(e, "missing from the vocab"));

  e = error_of([] {
    Tokenizer::from_json(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":[],"dropout":0.1}})", "x.json");
  });
  CHECK(contains(e, "dropout"));

  e = error_of([] { Tokenizer::from_json(R"({"model":{"type":"BPE","vocab":[1,2]}})", "v.json"); });
  CHECK(contains(e, "vocab"));

  e = error_of([] {
    Tokenizer::from_json(R"({"model":{"type":"BPE","vocab":{"a":"zero"},"merges":[]}})", "t.json");
  });
  CHECK(contains(e, "t.json"));
}

TEST_CASE("UTF-8 helpers") {
  CHECK(unicode::is_valid_utf8("héllo 😀"));
  CHECK_FALSE(unicode::is_valid_utf8("\xC3"));
  CHECK_FALSE(unicode::is_valid_utf8("\xED\xA0\x80"));  // a surrogate
  CHECK_FALSE(unicode::is_valid_utf8("\xC0\xAF"));      // overlong
  // Rust's from_utf8_lossy: one U+FFFD per maximal invalid subpart.
  CHECK(unicode::utf8_lossy("a\xF0\x9F\x98") == "a\xEF\xBF\xBD");
  CHECK(unicode::utf8_lossy("\xF0\x9F\x98" "b") == "\xEF\xBF\xBD" "b");
  CHECK(unicode::utf8_lossy("\x80\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(unicode::utf8_lossy("\xE0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(unicode::utf8_lossy("ok") == "ok");
}

TEST_CASE("Unicode categories and NFC") {
  CHECK(unicode::is_letter(U'é'));
  CHECK(unicode::is_letter(U'日'));
  CHECK_FALSE(unicode::is_letter(U'1'));
  CHECK(unicode::is_number(U'٣'));  // Arabic-Indic digit three
  CHECK(unicode::is_number(U'½'));
  CHECK(unicode::is_whitespace(0x3000));
  CHECK_FALSE(unicode::is_whitespace(0x200B));  // zero width space is not White_Space
  CHECK(unicode::is_word_char(U'_'));
  CHECK(unicode::nfc("e\xCC\x81") == "\xC3\xA9");                        // e + acute → é
  CHECK(unicode::nfc("A\xCC\x8A") == "\xC3\x85");                        // A + ring → Å
  CHECK(unicode::nfc("\xE2\x84\xAB") == "\xC3\x85");                     // Ångström sign → Å
  CHECK(unicode::nfc("q\xCC\x87\xCC\xA3") == "q\xCC\xA3\xCC\x87");      // reordered marks
  CHECK(unicode::nfc("\xE1\x84\x92\xE1\x85\xA1\xE1\x86\xAB") == "한");  // Hangul jamo → syllable
  CHECK(unicode::nfc("한국어") == "한국어");
  CHECK(unicode::nfc("plain ascii") == "plain ascii");
}

TEST_CASE("Split pre-tokenizer: the five delimiter behaviors") {
  // With ignore_merges, a piece found in the vocab becomes one id, so the ids show the pieces.
  // Expected pieces: the examples of tokenizers' SplitDelimiterBehavior documentation.
  const std::string vocab =
      R"({"t":0,"h":1,"e":2,"-":3,"f":4,"i":5,"n":6,"a":7,"l":8,"c":9,"o":10,"u":11,"d":12,"w":13,
          "the":20,"final":21,"countdown":22,"--":23,"the-":24,"final-":25,"-final":26,"-countdown":27})";
  const auto pieces = [&](const std::string& behavior) {
    const Tokenizer tok = Tokenizer::from_json(
        R"({"pre_tokenizer":{"type":"Split","pattern":{"String":"-"},"behavior":")" + behavior +
        R"(","invert":false},"model":{"type":"BPE","ignore_merges":true,"vocab":)" + vocab +
        R"(,"merges":[]}})");
    std::vector<std::string> out;
    for (std::int32_t id : tok.encode("the-final--countdown")) out.push_back(*tok.id_to_token(id));
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces("Removed") == V{"the", "final", "countdown"});
  CHECK(pieces("Isolated") == V{"the", "-", "final", "-", "-", "countdown"});
  CHECK(pieces("MergedWithPrevious") == V{"the-", "final-", "-", "countdown"});
  CHECK(pieces("MergedWithNext") == V{"the", "-final", "-", "-countdown"});
  CHECK(pieces("Contiguous") == V{"the", "-", "final", "--", "countdown"});
}

TEST_CASE("a model without type or merges is refused") {
  const std::string e = error_of([] {
    Tokenizer::from_json(R"({"model":{"vocab":{"a":0},"unk_token":"[UNK]","continuing_subword_prefix":"##"}})", "wp.json");
  });
  CHECK(contains(e, "not a BPE model"));
}
