// duet-keygen: makes a CURVE key pair as NAME.key (public) and NAME.key_secret (0600).
//   duet-keygen --out ~/.config/duet/keys --name edge-laptop
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "protocol/curve_keys.hpp"

int main(int argc, char** argv) {
  CLI::App app{"Create a CurveZMQ key pair for duet (NAME.key to share, NAME.key_secret to keep)"};
  std::string out_dir;
  std::string name;
  bool force = false;
  app.add_option("--out", out_dir, "directory for the two files (created if missing)")->required();
  app.add_option("--name", name, "key name: letters, digits, '.', '_', '-'")->required();
  app.add_flag("--force", force, "replace existing files of that name");
  CLI11_PARSE(app, argc, argv);

  try {
    const auto keys = duet::protocol::generate_keypair();
    const auto files = duet::protocol::write_keypair(out_dir, name, keys, force);
    std::printf("public key file: %s\nsecret key file: %s (mode 0600, keep it private)\n"
                "public key:      %s\n",
                files.public_file.c_str(), files.secret_file.c_str(), keys.public_z85.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-keygen: %s\n", e.what());
    return 1;
  }
}
