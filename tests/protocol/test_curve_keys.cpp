// Key files: generated pairs write and parse back, secret files are 0600 from creation, nothing
// is overwritten unless asked, malformed or misplaced files fail with the file's name, and an
// empty or missing allow-list directory never yields an open server.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "protocol/curve_keys.hpp"
#include "temp_dir.hpp"

using namespace duet::protocol;
using duet::protocol::test::TempDir;
namespace fs = std::filesystem;

namespace {

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

void write_text(const fs::path& p, const std::string& text, unsigned mode = 0644) {
  { std::ofstream(p) << text; }
  fs::permissions(p, static_cast<fs::perms>(mode));
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Runs a command, returns its exit status and stdout.
int run(const std::string& cmd, std::string& out) {
  FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[512];
  out.clear();
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int status = ::pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CHECK_KEY_ERROR_MENTIONS(expr, needle)                                  \
  do {                                                                          \
    try {                                                                       \
      (void)(expr);                                                             \
      FAIL_CHECK("expected KeyError from " #expr);                              \
    } catch (const KeyError& e_) {                                              \
      INFO("message: " << std::string(e_.what()));                              \
      CHECK(std::string(e_.what()).find(needle) != std::string::npos);          \
    }                                                                           \
  } while (0)

}  // namespace

TEST_CASE("generated key pairs are valid and distinct") {
  const auto a = generate_keypair();
  const auto b = generate_keypair();
  CHECK(a.public_z85.size() == 40);
  CHECK(a.secret_z85.size() == 40);
  CHECK(is_valid_z85_key(a.public_z85));
  CHECK(is_valid_z85_key(a.secret_z85));
  CHECK(a.public_z85 != b.public_z85);
  CHECK_FALSE(is_valid_z85_key("short"));
  CHECK_FALSE(is_valid_z85_key(std::string(40, '~')));  // not in the Z85 alphabet
}

TEST_CASE("write_keypair: zcert files that parse back, secret mode 0600") {
  TempDir dir;
  const auto keys = generate_keypair();
  const auto files = write_keypair(dir / "keys", "alice", keys);  // creates the directory
  CHECK(files.public_file == dir / "keys" / "alice.key");
  CHECK(files.secret_file == dir / "keys" / "alice.key_secret");
  CHECK(mode_of(files.secret_file) == 0600);
  CHECK(mode_of(files.public_file) == 0644);
  CHECK(load_public_key(files.public_file) == keys.public_z85);
  CHECK(load_public_key(files.secret_file) == keys.public_z85);
  const auto back = load_keypair(files.secret_file);
  CHECK(back.public_z85 == keys.public_z85);
  CHECK(back.secret_z85 == keys.secret_z85);
  // the public file holds no secret; the format is czmq's
  const std::string pub = read_text(files.public_file);
  CHECK(pub.find(keys.secret_z85) == std::string::npos);
  CHECK(pub.find("curve\n    public-key = \"" + keys.public_z85 + "\"") != std::string::npos);
  CHECK(pub.find("metadata\n    name = \"alice\"") != std::string::npos);
  CHECK(read_text(files.secret_file).find("    secret-key = \"" + keys.secret_z85 + "\"") !=
        std::string::npos);
}

TEST_CASE("write_keypair refuses to overwrite unless asked, and bad names") {
  TempDir dir;
  const auto k1 = generate_keypair();
  const auto k2 = generate_keypair();
  write_keypair(dir.path(), "bob", k1);
  CHECK_KEY_ERROR_MENTIONS(write_keypair(dir.path(), "bob", k2), "already exists");
  CHECK(load_keypair(dir / "bob.key_secret").secret_z85 == k1.secret_z85);  // untouched
  // only the public file present: still refused, and no secret is left behind
  fs::remove(dir / "bob.key_secret");
  CHECK_KEY_ERROR_MENTIONS(write_keypair(dir.path(), "bob", k2), "bob.key");
  CHECK_FALSE(fs::exists(dir / "bob.key_secret"));
  write_keypair(dir.path(), "bob", k2, /*overwrite=*/true);
  CHECK(load_keypair(dir / "bob.key_secret").secret_z85 == k2.secret_z85);
  CHECK(mode_of(dir / "bob.key_secret") == 0600);
  for (const char* bad : {"", "../evil", "a/b", ".hidden", "sp ace", "x\n"})
    CHECK_THROWS_AS(write_keypair(dir.path(), bad, k1), KeyError);
  // no temporary files left over
  int n = 0;
  for (auto& e : fs::directory_iterator(dir.path())) (void)e, ++n;
  CHECK(n == 2);
}

TEST_CASE("loading key files: clear errors naming the file") {
  TempDir dir;
  const auto keys = generate_keypair();
  CHECK_KEY_ERROR_MENTIONS(load_public_key(dir / "missing.key"), "missing.key");
  write_text(dir / "garbage.key", "this is not a certificate\n");
  CHECK_KEY_ERROR_MENTIONS(load_public_key(dir / "garbage.key"), "garbage.key");
  write_text(dir / "short.key", "curve\n    public-key = \"abc\"\n");
  CHECK_KEY_ERROR_MENTIONS(load_public_key(dir / "short.key"), "short.key");
  write_text(dir / "tab.key", "curve\n\tpublic-key = \"" + keys.public_z85 + "\"\n");
  CHECK_KEY_ERROR_MENTIONS(load_public_key(dir / "tab.key"), "line 2");
  write_text(dir / "unterminated.key", "curve\n    public-key = \"" + keys.public_z85 + "\n");
  CHECK_KEY_ERROR_MENTIONS(load_public_key(dir / "unterminated.key"), "unterminated");
  // a hand-written file in czmq's format, with comments and CRLF line ends
  write_text(dir / "czmq.key", "#   ZeroMQ CURVE Public Certificate\r\n\r\nmetadata\r\n"
                               "curve\r\n    public-key = \"" + keys.public_z85 + "\"\r\n");
  CHECK(load_public_key(dir / "czmq.key") == keys.public_z85);

  // secret files: permissions and key consistency
  const auto files = write_keypair(dir / "own", "me", keys);
  fs::permissions(files.secret_file, static_cast<fs::perms>(0644));
  CHECK_KEY_ERROR_MENTIONS(load_keypair(files.secret_file), "chmod 600");
  CHECK_KEY_ERROR_MENTIONS(load_keypair(files.public_file), "readable by others");
  const auto other = generate_keypair();
  write_text(dir / "mixed.key_secret",
             "curve\n    public-key = \"" + other.public_z85 + "\"\n    secret-key = \"" +
                 keys.secret_z85 + "\"\n",
             0600);
  CHECK_KEY_ERROR_MENTIONS(load_keypair(dir / "mixed.key_secret"), "does not belong");
  write_text(dir / "nosecret.key_secret", "curve\n    public-key = \"" + keys.public_z85 + "\"\n",
             0600);
  CHECK_KEY_ERROR_MENTIONS(load_keypair(dir / "nosecret.key_secret"), "secret-key");
}

TEST_CASE("allow-list directory: every *.key, and never empty") {
  TempDir dir;
  CHECK_KEY_ERROR_MENTIONS(load_authorized_keys(dir / "nope"), "does not exist");
  CHECK_KEY_ERROR_MENTIONS(load_authorized_keys(dir.path()), "holds no *.key file");
  write_text(dir / "README", "not a key");
  write_keypair(dir / "own", "server", generate_keypair());
  fs::copy_file(dir / "own" / "server.key_secret", dir / "server.key_secret");
  CHECK_KEY_ERROR_MENTIONS(load_authorized_keys(dir.path()), "holds no *.key file");
  CHECK_KEY_ERROR_MENTIONS(load_authorized_keys(dir / "README"), "not a directory");

  const auto a = generate_keypair();
  const auto b = generate_keypair();
  TempDir src;
  write_keypair(src.path(), "zed", a);
  write_keypair(src.path(), "amy", b);
  fs::copy_file(src / "zed.key", dir / "zed.key");
  fs::copy_file(src / "amy.key", dir / "amy.key");
  const auto keys = load_authorized_keys(dir.path());
  REQUIRE(keys.size() == 2);
  CHECK(keys[0].name == "amy");
  CHECK(keys[0].public_z85 == b.public_z85);
  CHECK(keys[1].name == "zed");
  CHECK(keys[1].file == dir / "zed.key");

  // one malformed key file stops the load instead of being skipped
  write_text(dir / "broken.key", "curve\n    public-key = \"nope\"\n");
  CHECK_KEY_ERROR_MENTIONS(load_authorized_keys(dir.path()), "broken.key");
  fs::remove(dir / "broken.key");

  if (::geteuid() != 0) {  // root reads any directory
    fs::permissions(dir.path(), fs::perms::none);
    CHECK_THROWS_AS(load_authorized_keys(dir.path()), KeyError);
    fs::permissions(dir.path(), fs::perms::owner_all);
  }
}

TEST_CASE("duet-keygen writes a pair and prints the public key") {
  TempDir dir;
  const std::string exe = DUET_KEYGEN_PATH;
  std::string out;
  CHECK(run(exe + " --out " + (dir / "k").string() + " --name edge1", out) == 0);
  INFO(out);
  const auto kp = load_keypair(dir / "k" / "edge1.key_secret");
  CHECK(out.find(kp.public_z85) != std::string::npos);
  CHECK(out.find(kp.secret_z85) == std::string::npos);  // never print the secret
  CHECK(mode_of(dir / "k" / "edge1.key_secret") == 0600);
  CHECK(run(exe + " --out " + (dir / "k").string() + " --name edge1", out) == 1);
  CHECK(out.find("already exists") != std::string::npos);
  CHECK(run(exe + " --out " + (dir / "k").string() + " --name edge1 --force", out) == 0);
  CHECK(load_keypair(dir / "k" / "edge1.key_secret").public_z85 != kp.public_z85);
  CHECK(run(exe + " --name x", out) != 0);  // --out is required
}
