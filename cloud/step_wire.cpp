#include "cloud/step_wire.hpp"

namespace duet::cloud::step_wire {

std::string to_string(Code c) {
  switch (c) {
    case Code::none: return "none";
    case Code::plan_mismatch: return "plan_mismatch (the worker holds another plan or model)";
    case Code::bad_step: return "bad_step (the worker refused the step's rows or shapes)";
    case Code::failed: return "failed (the worker's forward threw; see its log)";
  }
  return "unknown code " + std::to_string(static_cast<int64_t>(c));
}

std::array<int64_t, kHeaderWords> encode_header(const Header& h) {
  return {kMagic, kVersion, static_cast<int64_t>(h.kind), h.step, h.plan, h.rows, h.tokens, h.ids, h.hidden,
          static_cast<int64_t>(h.code), h.x_rows, 0, 0, 0, 0, 0};
}

Header decode_header(const int64_t* w, size_t n, const Limits& l) {
  auto bad = [](const std::string& what) { throw WireError("step header: " + what); };
  if (n != kHeaderWords) bad(std::to_string(n) + " words, expected " + std::to_string(kHeaderWords));
  if (w[0] != kMagic) bad("bad magic (not a duet step)");
  if (w[1] != kVersion)
    bad("version " + std::to_string(w[1]) + ", this build speaks " + std::to_string(kVersion) +
        ": run the same duet build on the front door and every worker");
  Header h;
  if (w[2] < 1 || w[2] > 3) bad("unknown kind " + std::to_string(w[2]));
  h.kind = static_cast<Kind>(w[2]);
  h.step = w[3];
  h.plan = w[4];
  h.rows = w[5];
  h.tokens = w[6];
  h.ids = w[7];
  h.hidden = w[8];
  if (w[9] < 0 || w[9] > 3) bad("unknown code " + std::to_string(w[9]));
  h.code = static_cast<Code>(w[9]);
  h.x_rows = w[10];
  for (size_t i = 11; i < kHeaderWords; ++i)
    if (w[i] != 0) bad("spare word " + std::to_string(i) + " is " + std::to_string(w[i]) + ", not 0");
  if (h.kind != Kind::step) {
    if (h.rows || h.tokens || h.ids || h.x_rows) bad("a heartbeat or error carries no rows");
    return h;
  }
  if (h.rows < 1 || h.rows > l.max_rows) bad("rows " + std::to_string(h.rows) + " outside [1, " + std::to_string(l.max_rows) + "]");
  if (h.tokens < h.rows || h.tokens > l.max_tokens)
    bad("tokens " + std::to_string(h.tokens) + " outside [rows, " + std::to_string(l.max_tokens) + "]");
  if (h.ids < kMinRowWords * h.rows || h.ids > l.max_ids)
    bad("ids " + std::to_string(h.ids) + " outside [" + std::to_string(kMinRowWords) + " * rows, " + std::to_string(l.max_ids) + "]");
  if (h.x_rows < 0 || h.x_rows > h.tokens)
    bad("x_rows " + std::to_string(h.x_rows) + " outside [0, tokens " + std::to_string(h.tokens) + "]");
  if (h.hidden != l.hidden) bad("hidden " + std::to_string(h.hidden) + ", the model's is " + std::to_string(l.hidden));
  return h;
}

std::vector<int64_t> encode_rows(const StepBatch& batch, int64_t block_size) {
  std::vector<int64_t> w;
  for (const auto& r : batch.rows) {
    // the blocks this row's keys read and its new positions write: positions [0, start + n)
    const auto nb = std::min<int64_t>(KvBlockAllocator::blocks_for(r.start + r.n, block_size),
                                      static_cast<int64_t>(r.table->blocks.size()));
    w.push_back(r.start);
    w.push_back(r.n);
    w.push_back(r.outputs());
    w.push_back(nb);
    w.insert(w.end(), r.table->blocks.begin(), r.table->blocks.begin() + nb);
  }
  return w;
}

WireStep decode_rows(const int64_t* w, size_t n, const Header& h, int64_t num_blocks, int64_t block_size) {
  auto bad = [](const std::string& what) { throw WireError("step rows: " + what); };
  if (static_cast<int64_t>(n) != h.ids) bad(std::to_string(n) + " words, the header says " + std::to_string(h.ids));
  WireStep s;
  s.tables.reserve(static_cast<size_t>(h.rows));
  size_t at = 0;
  int64_t tokens = 0;
  for (int64_t i = 0; i < h.rows; ++i) {
    if (at + 4 > n) bad("row " + std::to_string(i) + " runs past the end");
    const int64_t start = w[at], cnt = w[at + 1], out = w[at + 2], nb = w[at + 3];
    at += 4;
    if (start < 0 || cnt < 1 || cnt > h.tokens) bad("row " + std::to_string(i) + ": start or n out of range");
    if (out < 0 || out > cnt) bad("row " + std::to_string(i) + ": out " + std::to_string(out) + " outside [0, n]");
    if (nb != KvBlockAllocator::blocks_for(start + cnt, block_size) || nb > static_cast<int64_t>(n - at))
      bad("row " + std::to_string(i) + ": " + std::to_string(nb) + " block ids for positions [0, " +
          std::to_string(start + cnt) + ")");
    BlockTable t;
    for (int64_t k = 0; k < nb; ++k) {
      const int64_t id = w[at++];
      if (id < 1 || id >= num_blocks)
        bad("row " + std::to_string(i) + " names block " + std::to_string(id) + ", outside [1, " + std::to_string(num_blocks) + ")");
      t.blocks.push_back(static_cast<int32_t>(id));
    }
    t.length = start;  // positions [0, start) hold the sequence (the front door's word for it)
    s.tables.push_back(std::move(t));
    s.batch.rows.push_back({&s.tables.back(), start, cnt, out});
    tokens += cnt;
  }
  if (at != n) bad(std::to_string(n - at) + " words after the last row");
  if (tokens != h.tokens) bad("rows hold " + std::to_string(tokens) + " tokens, the header says " + std::to_string(h.tokens));
  return s;
}

}  // namespace duet::cloud::step_wire
