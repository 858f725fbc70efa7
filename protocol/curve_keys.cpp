#include "protocol/curve_keys.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <sstream>

#include <zmq.h>

namespace duet::protocol {
namespace fs = std::filesystem;
namespace {

std::string quote(const fs::path& p) { return "\"" + p.string() + "\""; }

std::string sys_error(const std::string& what, const fs::path& p) {
  return what + " " + quote(p) + ": " + std::strerror(errno);
}

void check_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 && name[0] != '.' &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                           (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                  });
  if (!ok)
    throw KeyError("key name \"" + name +
                   "\" is not allowed; use 1-64 letters, digits, '.', '_' or '-', not starting "
                   "with '.'");
}

void check_key(std::string_view z85, std::string_view what) {
  if (!is_valid_z85_key(z85))
    throw KeyError(std::string(what) + " is not a CURVE key: expected 40 Z85 characters");
}

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string public_text(const std::string& name, const CurveKeyPair& k) {
  return "#   ****  Generated on " + timestamp() + " by duet-keygen  ****\n"
         "#   ZeroMQ CURVE Public Certificate\n"
         "#   Exchange securely, or use a secure mechanism to verify the contents\n"
         "#   of this file after exchange. Store public certificates in your home\n"
         "#   directory, in the .curve subdirectory.\n"
         "\n"
         "metadata\n"
         "    name = \"" + name + "\"\n"
         "curve\n"
         "    public-key = \"" + k.public_z85 + "\"\n";
}

std::string secret_text(const std::string& name, const CurveKeyPair& k) {
  return "#   ****  Generated on " + timestamp() + " by duet-keygen  ****\n"
         "#   ZeroMQ CURVE **Secret** Certificate\n"
         "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
         "\n"
         "metadata\n"
         "    name = \"" + name + "\"\n"
         "curve\n"
         "    public-key = \"" + k.public_z85 + "\"\n"
         "    secret-key = \"" + k.secret_z85 + "\"\n";
}

void write_all(int fd, const std::string& text, const fs::path& p) {
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw KeyError(sys_error("cannot write", p));
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) throw KeyError(sys_error("cannot flush", p));
}

// Creates the file with exactly `mode` from its first byte: O_EXCL on the final path when not
// overwriting, else a mkstemp file (always 0600) renamed over the old one.
void write_file(const fs::path& p, const std::string& text, mode_t mode, bool overwrite) {
  fs::path target = p;
  std::string tmpl = p.string() + ".XXXXXX";
  int fd;
  if (!overwrite) {
    fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
  } else {
    fd = ::mkstemp(tmpl.data());
    target = tmpl;
  }
  if (fd < 0) throw KeyError(sys_error("cannot create", target));
  try {
    if (::fchmod(fd, mode) != 0) throw KeyError(sys_error("cannot set permissions of", target));
    write_all(fd, text, target);
  } catch (...) {
    ::close(fd);
    ::unlink(target.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(target.c_str());
    throw KeyError(sys_error("cannot close", target));
  }
  if (overwrite && ::rename(target.c_str(), p.c_str()) != 0) {
    const std::string msg = sys_error("cannot rename " + quote(target) + " to", p);
    ::unlink(target.c_str());
    throw KeyError(msg);
  }
}

// Minimal ZPL (ZeroMQ property language, RFC 4) reader: 4-space indented sections,
// `name = value` with optional quotes, '#' comments. Returns "section/name" -> value.
std::map<std::string, std::string> parse_zpl(const fs::path& p) {
  std::error_code ec;
  if (!fs::exists(p, ec))
    throw KeyError("key file " + quote(p) + " does not exist");
  std::ifstream in(p, std::ios::binary);
  if (!in) throw KeyError(sys_error("cannot read key file", p));
  std::map<std::string, std::string> out;
  std::vector<std::string> path;
  std::string line;
  int lineno = 0;
  auto fail = [&](const std::string& why) {
    throw KeyError("key file " + quote(p) + " line " + std::to_string(lineno) + ": " + why +
                   " (expected ZeroMQ certificate format, as written by duet-keygen)");
  };
  while (std::getline(in, line)) {
    ++lineno;
    if (lineno > 1000) fail("file is too long for a key file");
    if (!line.empty() && line.back() == '\r') line.pop_back();
    std::size_t indent = line.find_first_not_of(' ');
    if (indent == std::string::npos || line[indent] == '#') continue;
    if (line[indent] == '\t') fail("tabs are not allowed for indentation");
    if (indent % 4 != 0) fail("indentation must be a multiple of 4 spaces");
    const std::size_t depth = indent / 4;
    if (depth > path.size()) fail("line is indented deeper than its section");
    path.resize(depth);
    const std::size_t eq = line.find('=', indent);
    std::string name = line.substr(indent, eq == std::string::npos ? std::string::npos : eq - indent);
    while (!name.empty() && name.back() == ' ') name.pop_back();
    if (name.empty()) fail("missing a name before '='");
    path.push_back(name);
    if (eq == std::string::npos) continue;  // a section header
    std::string value = line.substr(eq + 1);
    const std::size_t first = value.find_first_not_of(' ');
    value = first == std::string::npos ? std::string() : value.substr(first);
    if (!value.empty() && (value[0] == '"' || value[0] == '\'')) {
      const std::size_t close = value.find(value[0], 1);
      if (close == std::string::npos) fail("unterminated quoted value");
      value = value.substr(1, close - 1);
    } else {
      const std::size_t hash = value.find('#');
      if (hash != std::string::npos) value.erase(hash);
      while (!value.empty() && value.back() == ' ') value.pop_back();
    }
    std::string key;
    for (const auto& s : path) key += (key.empty() ? "" : "/") + s;
    out[key] = value;
    path.pop_back();  // a value line is a leaf, not a section
  }
  if (in.bad()) throw KeyError(sys_error("cannot read key file", p));
  return out;
}

std::string get_key(const std::map<std::string, std::string>& zpl, const std::string& k,
                    const fs::path& p) {
  auto it = zpl.find(k);
  if (it == zpl.end())
    throw KeyError("key file " + quote(p) + " has no " + k +
                   " entry (expected ZeroMQ certificate format, as written by duet-keygen)");
  check_key(it->second, "the " + k + " in " + quote(p));
  return it->second;
}

}  // namespace

bool is_valid_z85_key(std::string_view z85) noexcept {
  if (z85.size() != 40) return false;
  char buf[41];
  std::memcpy(buf, z85.data(), 40);
  buf[40] = '\0';
  uint8_t out[32];
  return zmq_z85_decode(out, buf) != nullptr;
}

CurveKeyPair generate_keypair() {
  char pub[41] = {};
  char sec[41] = {};
  if (zmq_curve_keypair(pub, sec) != 0)
    throw KeyError(std::string("zmq_curve_keypair failed: ") + zmq_strerror(zmq_errno()) +
                   " (libzmq built without CURVE support?)");
  return CurveKeyPair{pub, sec};
}

KeyFiles write_keypair(const fs::path& dir, const std::string& name, const CurveKeyPair& keys,
                       bool overwrite) {
  check_name(name);
  check_key(keys.public_z85, "the public key to write");
  check_key(keys.secret_z85, "the secret key to write");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw KeyError("cannot create key directory " + quote(dir) + ": " + ec.message());
  KeyFiles files{dir / (name + ".key"), dir / (name + ".key_secret")};
  if (!overwrite)
    for (const auto& p : {files.public_file, files.secret_file})
      if (fs::symlink_status(p, ec).type() != fs::file_type::not_found)
        throw KeyError(quote(p) +
                       " already exists; refusing to replace a key (pass --force / "
                       "overwrite=true; peers holding the old public key will then be refused)");
  write_file(files.secret_file, secret_text(name, keys), 0600, overwrite);
  try {
    write_file(files.public_file, public_text(name, keys), 0644, overwrite);
  } catch (...) {
    if (!overwrite) ::unlink(files.secret_file.c_str());
    throw;
  }
  return files;
}

std::string load_public_key(const fs::path& path) {
  return get_key(parse_zpl(path), "curve/public-key", path);
}

CurveKeyPair load_keypair(const fs::path& secret_path) {
  struct stat st {};
  if (::stat(secret_path.c_str(), &st) != 0)
    throw KeyError(sys_error("cannot open secret key file", secret_path));
  if (st.st_mode & 077) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    throw KeyError("secret key file " + quote(secret_path) + " is readable by others (mode " +
                   mode + "); run: chmod 600 " + secret_path.string());
  }
  const auto zpl = parse_zpl(secret_path);
  CurveKeyPair k{get_key(zpl, "curve/public-key", secret_path),
                 get_key(zpl, "curve/secret-key", secret_path)};
  char derived[41] = {};
  if (zmq_curve_public(derived, k.secret_z85.c_str()) != 0 || k.public_z85 != derived)
    throw KeyError("secret key file " + quote(secret_path) +
                   ": its public-key does not belong to its secret-key (file edited or mixed "
                   "up?); regenerate it with duet-keygen");
  return k;
}

std::vector<AuthorizedKey> load_authorized_keys(const fs::path& dir) {
  const std::string hint =
      "; copy each allowed client's NAME.key (made by duet-keygen) into it. The server refuses "
      "to run open to every key";
  std::error_code ec;
  const auto st = fs::status(dir, ec);
  if (st.type() == fs::file_type::not_found)
    throw KeyError("allow-list directory " + quote(dir) + " does not exist" + hint);
  if (ec) throw KeyError("cannot read allow-list directory " + quote(dir) + ": " + ec.message());
  if (st.type() != fs::file_type::directory)
    throw KeyError("allow-list " + quote(dir) + " is not a directory" + hint);
  std::vector<AuthorizedKey> keys;
  try {
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.path().extension() != ".key" || !e.is_regular_file()) continue;
      keys.push_back(AuthorizedKey{e.path().stem().string(), load_public_key(e.path()), e.path()});
    }
  } catch (const fs::filesystem_error& e) {
    throw KeyError("cannot read allow-list directory " + quote(dir) + ": " +
                   e.code().message());
  }
  if (keys.empty())
    throw KeyError("allow-list directory " + quote(dir) + " holds no *.key file" + hint);
  std::sort(keys.begin(), keys.end(),
            [](const AuthorizedKey& a, const AuthorizedKey& b) { return a.file < b.file; });
  return keys;
}

}  // namespace duet::protocol
