// The shipped configs/*.toml parse, point at real files, and run end to end; config errors name
// the file and the key.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "cloud/cloud_config.hpp"
#include "edge/client/edge_config.hpp"
#include "harness.hpp"

using namespace duet::itest;
using duet::cloud::CloudConfig;
using duet::edge::EdgeConfig;

namespace {

std::string normal(const std::string& p) { return fs::path(p).lexically_normal().string(); }

// what() of the exception `load` throws for a file holding `text`, with the file's path
std::pair<std::string, std::string> error_of(const std::string& text, bool cloud) {
  static TempDir dir("duet-itest-config");
  static int n = 0;
  const std::string path = (dir / ("bad" + std::to_string(n++) + ".toml")).string();
  std::ofstream(path) << text;
  try {
    if (cloud) CloudConfig::from_toml_file(path).validate();
    else EdgeConfig::from_toml_file(path);
  } catch (const std::exception& e) {
    return {e.what(), path};
  }
  return {"", path};
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("configs/cloud.toml and configs/edge.toml parse, resolve their paths, and validate") {
  const std::string dir = source_path("configs");
  auto c = CloudConfig::from_toml_file(dir + "/cloud.toml");
  CHECK_NOTHROW(c.validate());
  CHECK(normal(c.model_path) == normal(abc_model()));
  CHECK(fs::exists(fs::path(c.model_path) / "config.json"));
  CHECK_FALSE(c.insecure);  // encryption on in the example
  CHECK(normal(c.secret_key) == normal(source_path("keys/server.key_secret")));
  CHECK(normal(c.authorized_keys) == normal(source_path("keys/clients")));
  CHECK_FALSE(c.devices.empty());
  CHECK(c.max_sessions >= 1);

  auto e = EdgeConfig::from_toml_file(dir + "/edge.toml");
  CHECK(normal(e.model_path) == normal(abc_model()));
  CHECK_FALSE(e.insecure);
  CHECK(normal(e.server_key) == normal(source_path("keys/server.key")));
  CHECK(normal(e.client_key) == normal(source_path("keys/edge.key_secret")));
  CHECK(e.server == c.listen);  // the two examples talk to each other as they are
  CHECK(e.timeout_ms > 0);
}

TEST_CASE("config errors name the file and the key") {
  struct Bad {
    const char* text;
    bool cloud;
    const char* key;
  };
  const Bad cases[] = {
      {"[server]\nbogus = 1\n", true, "server.bogus"},
      {"[limits]\nmax_sessions = \"many\"\n", true, "limits.max_sessions"},
      {"[limits]\nidle_timeout_s = -3\n", true, "limits.idle_timeout_s"},
      {"[server]\ninsecure = \"yes\"\n", true, "server.insecure"},
      {"[server]\ninsecure = 1\n", true, "server.insecure"},
      {"[limits]\nmax_sessions = 2.5\n", true, "limits.max_sessions"},
      {"[stages]\ndevices = \"cpu\"\n", true, "stages.devices"},
      {"[nonsense]\nx = 1\n", true, "nonsense"},
      {"[model]\npth = \"x\"\n", false, "model.pth"},
      {"[cloud]\ntimeout_ms = \"soon\"\n", false, "cloud.timeout_ms"},
      {"[generate]\ntemperature = \"hot\"\n", false, "generate.temperature"},
      {"[cloud]\ninsecure = 1\n", false, "cloud.insecure"},
      {"[generate]\nmax_new_tokens = 1e3\n", false, "generate.max_new_tokens"},
      {"[cloud]\nspin_us = 200000\n", false, "cloud.spin_us"},
      {"[cloud]\nspin_us = -1\n", false, "cloud.spin_us"},
  };
  for (const auto& b : cases) {
    CAPTURE(std::string(b.text));
    auto [what, path] = error_of(b.text, b.cloud);
    INFO("error: " << what);
    REQUIRE_FALSE(what.empty());
    CHECK(contains(what, path));
    CHECK(contains(what, b.key));
  }
  // numbers past what the setting holds are refused, not wrapped around
  for (const char* text : {"[limits]\nidle_timeout_s = 5000000000\n", "[quotas.keys.a]\nmax_sessions = 4294967296\n",
                           "[quotas.keys.a]\nkv_share = 0\n", "[quotas.keys.a]\nsessions = 1\n"}) {
    CAPTURE(std::string(text));
    auto [what, path] = error_of(text, true);
    CHECK(contains(what, path));
    CHECK((contains(what, "idle_timeout_s") || contains(what, "quotas.keys.a.")));
  }
  // the daemon's checks that need no file name the setting
  auto c = CloudConfig::from_toml_file(source_path("configs") + "/cloud.toml");
  c.spin_us = 200000;
  try {
    c.validate();
    FAIL("a spin of 0.2 s was accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(contains(e.what(), "[server] spin_us"));
  }
  // a TOML syntax error names the file and the line
  auto [what, path] = error_of("[model]\npath = \n", true);
  CHECK(contains(what, path));
  CHECK(contains(what, "line 2"));
}

TEST_CASE("the shipped configs run end to end (keys and address overridden): split == --local") {
  const auto& k = keys();
  DaemonProcess d({"--config", source_path("configs/cloud.toml"), "--listen", "tcp://127.0.0.1:*", "--secret-key",
                   k.server_secret.string(), "--authorized-keys", k.clients.string()});
  INFO(d.log());
  const std::vector<std::string> common = {"generate", "--config", source_path("configs/edge.toml"), "-n", "12",
                                           "--json", "--temperature", "0"};
  auto args = common;
  args.insert(args.end(), {"--server", d.endpoint(), "--server-key", k.server_public.string(), "--client-key",
                           k.edge_secret.string()});
  auto split = run_process(edge_binary(), args);
  auto local_args = common;
  local_args.push_back("--local");
  auto local = run_process(edge_binary(), local_args);
  INFO(split.err << local.err);
  REQUIRE(split.status == 0);
  REQUIRE(local.status == 0);
  const auto js = nlohmann::json::parse(split.out), jl = nlohmann::json::parse(local.out);
  CHECK_FALSE(js["tokens"].empty());
  CHECK(js["tokens"] == jl["tokens"]);
  CHECK(d.stop() == 0);
}

// Every row of a settings table: shown under its section in the shipped example file (commented
// out where it has no useful example value), and its flag in `help`.
template <class Config>
void check_table_documented(const std::vector<duet::settings::Setting<Config>>& table, const std::string& file,
                            const std::string& help, unsigned scope) {
  std::ifstream in(source_path(file));
  const std::string shipped((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& s : table) {
    CAPTURE(file + ": " + s.section + "." + s.key);
    const auto at = shipped.find(std::string("[") + s.section + "]");
    REQUIRE(at != std::string::npos);
    const auto next = shipped.find("\n[", at + 1);
    const std::string body = shipped.substr(at, next == std::string::npos ? std::string::npos : next - at);
    CHECK((contains(body, std::string("\n") + s.key + " =") || contains(body, std::string("\n# ") + s.key + " =")));
    if (*s.flag && (s.scope & scope))
      CHECK((contains(help, std::string(s.flag) + " ") || contains(help, std::string(s.flag) + "\n")));
  }
}

TEST_CASE("one table declares each program's settings: the example configs and --help name every one") {
  const auto cloud_help = run_process(cloud_binary(), {"--help"});
  REQUIRE(cloud_help.status == 0);
  check_table_documented(duet::cloud::cloud_settings(), "configs/cloud.toml", cloud_help.out, ~0u);
  for (auto [sub, bit] : {std::pair{"generate", duet::edge::kGenerate}, {"serve", duet::edge::kServe},
                          {"styles", duet::edge::kStyles}}) {
    const auto help = run_process(edge_binary(), {sub, "--help"});
    REQUIRE(help.status == 0);
    check_table_documented(duet::edge::edge_settings(), "configs/edge.toml", help.out, bit);
  }
}

TEST_CASE("a flag and the file take a setting by the same rule; a flag wins over the file") {
  // the file's checks are the flag's: what the flag refuses, the file refuses, naming the key
  for (const auto& [text, key] : std::vector<std::pair<std::string, std::string>>{
           {"[generate]\ntemperature = -1\n", "generate.temperature"},
           {"[generate]\ntop_p = 7\n", "generate.top_p"},
           {"[generate]\ntop_p = 0\n", "generate.top_p"},
           {"[music]\ntempo = 100000\n", "music.tempo"},
           {"[cloud]\ntimeout_ms = 0\n", "cloud.timeout_ms"},
           {"[serve]\nmax_body_bytes = 10\n", "serve.max_body_bytes"}}) {
    CAPTURE(text);
    auto [what, path] = error_of(text, false);
    CHECK(contains(what, path));
    CHECK(contains(what, key));
  }
  const auto r = run_process(edge_binary(), {"generate", "--model", abc_model(), "--local", "--temperature", "-1"});
  CHECK(r.status != 0);
  CHECK(contains(r.out + r.err, "--temperature: must be 0 or more, not -1"));
  // over the shipped file, in the order given
  CloudConfig c = CloudConfig::from_toml_file(source_path("configs/cloud.toml"));
  for (const auto& s : duet::cloud::cloud_settings()) {
    if (std::string(s.key) == "idle_timeout_s") s.set_from_text("7", c);
    if (std::string(s.key) == "devices") s.set_from_text("cpu,cpu,cpu", c);
    if (std::string(s.key) == "kv_share_per_key") s.set_from_text("0.25", c);
  }
  CHECK(c.idle_timeout_s == 7);
  CHECK(c.devices == std::vector<std::string>{"cpu", "cpu", "cpu"});
  REQUIRE(c.key_kv_share.has_value());
  CHECK(*c.key_kv_share == doctest::Approx(0.25));
  // a row's mark (here: sampling chosen, which keeps a model's duet.json sampling out of a file's) is set by
  // its flag as by the file
  EdgeConfig e;
  for (const auto& s : duet::edge::edge_settings())
    if (std::string(s.key) == "top_k") s.set_from_text("5", e);
  CHECK(e.sampling.top_k == 5);
  CHECK(e.sampling_set);
}
