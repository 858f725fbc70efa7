// CURVE key pairs and their files, in ZeroMQ's certificate format (czmq zcert / ZPL), so that
// keys made by duet-keygen, czmq's zcert tools or pyzmq's zmq.auth.create_certificates mix.
//
//   NAME.key         public certificate, hand it out:   curve / public-key = "<z85>"
//   NAME.key_secret  secret certificate, mode 0600:     curve / public-key + secret-key
//
// A server holds its own NAME.key_secret and an allow-list directory of client NAME.key files;
// an edge holds its own NAME.key_secret and the server's NAME.key (pinned).
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace duet::protocol {

// Key material problems: missing, unreadable, malformed, badly permissioned files.
class KeyError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct CurveKeyPair {
  std::string public_z85;  // 40 chars
  std::string secret_z85;  // 40 chars; never log it
};

struct KeyFiles {
  std::filesystem::path public_file;  // DIR/NAME.key
  std::filesystem::path secret_file;  // DIR/NAME.key_secret
};

// A fresh pair from zmq_curve_keypair (libsodium / tweetnacl inside libzmq).
CurveKeyPair generate_keypair();

// True for a 40-char Z85 string that decodes to 32 bytes.
bool is_valid_z85_key(std::string_view z85) noexcept;

// Writes NAME.key (0644) and NAME.key_secret (0600, created with O_EXCL so it is never readable
// by others, not even briefly). Creates dir when missing. Throws KeyError when either file
// exists and overwrite is false, or when name is not [A-Za-z0-9._-]+ (no path tricks).
KeyFiles write_keypair(const std::filesystem::path& dir, const std::string& name,
                       const CurveKeyPair& keys, bool overwrite = false);

// The public key of a NAME.key (or NAME.key_secret) file. KeyError names the file and the line.
std::string load_public_key(const std::filesystem::path& path);

// Both keys of a NAME.key_secret file. Refuses a file readable by group or others, and a file
// whose public key does not belong to its secret key.
CurveKeyPair load_keypair(const std::filesystem::path& secret_path);

struct AuthorizedKey {
  std::string name;        // file stem: "alice" for alice.key
  std::string public_z85;
  std::filesystem::path file;
};

// Every regular *.key file in dir, sorted by file name. Throws KeyError when dir is missing,
// unreadable, not a directory, holds no *.key file, or holds a malformed one: a server must
// never start open to everyone because its allow-list was misconfigured.
std::vector<AuthorizedKey> load_authorized_keys(const std::filesystem::path& dir);

}  // namespace duet::protocol
