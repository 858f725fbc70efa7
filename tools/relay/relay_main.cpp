// duet-relay: a delaying TCP relay for link experiments where the kernel has no netem.
//   duet-relay --listen 127.0.0.1:7701 --connect 10.77.0.1:7700 --delay-ms 40 --jitter-ms 2
// Both directions get the same link; RTT = 2 x delay (+ the path under the relay). Stops on
// SIGTERM/SIGINT and prints what it carried.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "relay.hpp"

int main(int argc, char** argv) {
  CLI::App app{"duet-relay: TCP relay that delays, jitters, rate-limits and stalls (emulated loss) what it carries"};
  std::string listen, connect;
  duet::lab::LinkParams link;
  app.add_option("--listen", listen, "HOST:PORT to accept on (IPv4; port 0: any free one, printed)")->required();
  app.add_option("--connect", connect, "HOST:PORT to connect each accepted connection to")->required();
  app.add_option("--delay-ms", link.delay_ms, "one-way delay, each direction (RTT = 2 x this)");
  app.add_option("--jitter-ms", link.jitter_ms, "uniform jitter +- this around the delay; order is kept");
  app.add_option("--rate-mbit", link.rate_mbit, "rate each direction in Mbit/s (0: unlimited; use tc tbf where you can)");
  app.add_option("--loss", link.loss, "probability a 1448-byte segment is lost: its chunk stalls --loss-stall-ms");
  app.add_option("--loss-stall-ms", link.loss_stall_ms, "stall of a chunk with a lost segment (-1: max(2 x RTT, 10 ms))");
  app.add_option("--seed", link.seed, "seed for jitter and loss");
  CLI11_PARSE(app, argc, argv);

  try {
    duet::lab::RelayOptions o;
    o.listen = duet::lab::Endpoint::parse(listen, true);
    o.upstream = duet::lab::Endpoint::parse(connect, false);
    o.up = o.down = link;
    o.down.seed = link.seed ^ 0x9e3779b97f4a7c15ull;

    // SIGTERM/SIGINT through a signalfd: the loop sees them as one more readable descriptor
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigprocmask(SIG_BLOCK, &mask, nullptr);
    signal(SIGPIPE, SIG_IGN);
    const int sfd = signalfd(-1, &mask, SFD_CLOEXEC);
    if (sfd < 0) throw std::runtime_error("signalfd failed");

    duet::lab::Relay relay(o);
    std::printf("duet-relay: listening on %s:%u -> %s (%s)\n", o.listen.host.c_str(), relay.port(),
                o.upstream.str().c_str(), link.describe().c_str());
    std::fflush(stdout);
    relay.run(sfd);
    close(sfd);
    const auto& t = relay.totals();
    auto mean = [](const duet::lab::LinkStats& s) { return s.chunks ? s.added_ms_total / double(s.chunks) : 0.0; };
    std::printf("duet-relay: stopped; %llu connections (%llu refused upstream); up %llu bytes in %llu chunks (%.3f ms "
                "added on average, %llu stalls); down %llu bytes in %llu chunks (%.3f ms, %llu stalls)\n",
                static_cast<unsigned long long>(t.connections), static_cast<unsigned long long>(t.refused_upstream),
                static_cast<unsigned long long>(t.up.bytes), static_cast<unsigned long long>(t.up.chunks), mean(t.up),
                static_cast<unsigned long long>(t.up.stalls), static_cast<unsigned long long>(t.down.bytes),
                static_cast<unsigned long long>(t.down.chunks), mean(t.down),
                static_cast<unsigned long long>(t.down.stalls));
    std::printf("duet-relay: chunks left %.3f ms after their time on average (max %.3f ms)\n",
                t.late_samples ? t.late_ms_total / double(t.late_samples) : 0.0, t.late_ms_max);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-relay: %s\n", e.what());
    return 1;
  }
}
