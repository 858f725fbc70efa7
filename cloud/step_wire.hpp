#pragma once
// The step's wire form between the front door and its stage workers (inside the cluster, over
// c10d point-to-point send/recv; no LibTorch here: these are the int64 words the tensors carry).
// Grammar and version history: docs/STAGES.md ("The step on the wire").
//
//   message   = header rows x             (three c10d sends on one tag, in this order)
//   header    = int64[kHeaderWords]: magic, version, kind, step, plan, rows, tokens, ids, hidden, code,
//               x_rows, 0 * 5 (spare)
//   rows      = int64[ids]: per row  start, n, out, n_blocks, block_id * n_blocks  (ids = 0: not sent)
//   x         = [x_rows, hidden] in the plan's dtype                               (x_rows = 0: not sent)
//
// Every hop sends the same message on: the front door to the first worker of the chain, each
// worker to the next, the last back to the front door. Between workers x holds every position
// (x_rows = tokens); the chain's last worker sends back only each row's last `out` positions
// (x_rows = the sum of the outs; the front door asks for all of them when stages of its own
// follow the chain). A worker that cannot run a step sends an error header on (kind error, code
// set, rows and x dropped) so the chain never waits for nothing.
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/batch.hpp"

namespace duet::cloud::step_wire {

inline constexpr int64_t kMagic = 0x6475657453544550;  // "duetSTEP"
// 1: the first (10 header words). 2: x_rows in the header, out in each row (the last worker
// returns only the positions asked for), and the header 16 words with the last 5 spare (zero), so
// that later versions keep its size and are refused by their version word on the first header.
// A version-1 peer sends 10 words: the first receive fails (c10d) instead. Bump on any change of
// the words' meaning or order.
inline constexpr int64_t kVersion = 2;
inline constexpr size_t kHeaderWords = 16;

enum class Kind : int64_t {
  step = 1,       // rows + x follow
  heartbeat = 2,  // nothing follows; each hop passes it on (the front door's liveness probe)
  error = 3,      // nothing follows; code says why; each hop passes it on
};

enum class Code : int64_t {
  none = 0,
  plan_mismatch = 1,  // the step's plan fingerprint is not the worker's
  bad_step = 2,       // rows or shapes the worker refused (names in the worker's log)
  failed = 3,         // the worker's forward threw
};
std::string to_string(Code c);

struct Header {
  Kind kind = Kind::step;
  int64_t step = 0;    // the front door's step number: replies are matched by it
  int64_t plan = 0;    // the plan fingerprint (StagePlanText::fingerprint)
  int64_t rows = 0;
  int64_t tokens = 0;  // the step's positions (the rows' n summed)
  int64_t ids = 0;     // words of the rows message
  int64_t hidden = 0;
  Code code = Code::none;
  int64_t x_rows = 0;  // x's rows: tokens between workers, the rows' outs summed after the last
};

// Bounds a receiver enforces before it allocates anything.
struct Limits {
  int64_t max_rows = 4096;
  int64_t max_tokens = 1 << 16;
  int64_t max_ids = 1 << 22;
  int64_t hidden = 0;  // the model's hidden size: x must have it
};

class WireError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

std::array<int64_t, kHeaderWords> encode_header(const Header& h);
// Throws WireError naming the word that was wrong.
Header decode_header(const int64_t* words, size_t n, const Limits& limits);

std::vector<int64_t> encode_rows(const StepBatch& batch, int64_t block_size);

// Words per row at least: start, n, out, n_blocks and one block id.
inline constexpr int64_t kMinRowWords = 5;

// A decoded step: tables own the block ids the rows point at (moving keeps the pointers valid).
struct WireStep {
  std::vector<BlockTable> tables;
  StepBatch batch;
};
// Throws WireError when the words disagree with the header or name a block outside [1, num_blocks).
WireStep decode_rows(const int64_t* words, size_t n, const Header& h, int64_t num_blocks, int64_t block_size);

}  // namespace duet::cloud::step_wire
