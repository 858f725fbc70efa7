#include "cloud/worker_plan.hpp"

#include <sstream>
#include <stdexcept>

namespace duet::cloud {

std::string WorkerPlan::to_text() const {
  std::ostringstream o;
  o << "duet-stage-plan 1\nmodel " << model << " dtype " << dtype << " hidden " << hidden << "\nblocks " << num_blocks
    << " block_size " << block_size << " backend " << backend << "\n";
  for (const auto& w : workers)
    o << "worker " << w.name << " " << w.rank << " " << w.device << " " << w.first << " " << w.last << " " << w.prev
      << " " << w.next << "\n";
  return o.str();
}

WorkerPlan WorkerPlan::parse(const std::string& text) {
  std::istringstream in(text);
  std::string line, word;
  WorkerPlan p;
  auto bad = [](const std::string& l) { throw std::invalid_argument("the front door's stage plan: bad line '" + l + "'"); };
  if (!std::getline(in, line) || line != "duet-stage-plan 1") bad(line);
  if (!std::getline(in, line)) bad("");
  {
    std::istringstream l(line);
    std::string k1, k2, k3;
    if (!(l >> k1 >> p.model >> k2 >> p.dtype >> k3 >> p.hidden) || k1 != "model" || k2 != "dtype" || k3 != "hidden") bad(line);
  }
  if (!std::getline(in, line)) bad("");
  {
    std::istringstream l(line);
    std::string k1, k2, k3;
    if (!(l >> k1 >> p.num_blocks >> k2 >> p.block_size >> k3 >> p.backend) || k1 != "blocks" || k2 != "block_size" ||
        k3 != "backend" || (p.backend != "gloo" && p.backend != "nccl"))
      bad(line);
  }
  while (std::getline(in, line)) {
    std::istringstream l(line);
    Entry e;
    if (!(l >> word >> e.name >> e.rank >> e.device >> e.first >> e.last >> e.prev >> e.next) || word != "worker") bad(line);
    p.workers.push_back(e);
  }
  if (p.workers.empty()) bad("(no worker lines)");
  return p;
}

int64_t WorkerPlan::fingerprint() const {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : to_text()) h = (h ^ c) * 1099511628211ull;
  return static_cast<int64_t>(h >> 1);  // non-negative: reads the same in every log
}

std::string WorkerPlan::ask_text() const {
  std::string t = "duet-stage-ask 1\n";
  for (const auto& w : workers) t += "worker " + w.name + " " + w.device + "\n";
  return t;
}

std::vector<std::pair<std::string, std::string>> WorkerPlan::parse_ask(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  auto bad = [](const std::string& l) { throw std::invalid_argument("the front door's ask: bad line '" + l + "'"); };
  if (!std::getline(in, line) || line != "duet-stage-ask 1") bad(line);
  std::vector<std::pair<std::string, std::string>> out;
  while (std::getline(in, line)) {
    std::istringstream l(line);
    std::string k, name, device, extra;
    if (!(l >> k >> name >> device) || k != "worker" || (l >> extra)) bad(line);
    out.emplace_back(name, device);
  }
  return out;
}

std::string offer_text(int64_t free_bytes) { return "free " + std::to_string(free_bytes); }

int64_t parse_offer(const std::string& text) {
  std::istringstream l(text);
  std::string k, extra;
  int64_t v = 0;
  if (!(l >> k >> v) || k != "free" || (l >> extra))
    throw std::invalid_argument("a worker's offer '" + text + "' is not 'free <bytes>'");
  return v;
}

const WorkerPlan::Entry* WorkerPlan::find(const std::string& name) const {
  for (const auto& w : workers)
    if (w.name == name) return &w;
  return nullptr;
}

}  // namespace duet::cloud
