// The batch-shaped step: several sequences in one step (prefill chunks and decode rows mixed,
// sequences joining and leaving) give what each sequence gives alone through LocalBackbone
// (itself checked against transformers in test_golden.cpp), token for token and within fp32
// rounding; the padded (CUDA graph) arithmetic gives what the exact one gives.
#include "torch_doctest.hpp"

#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/backbone.hpp"
#include "common/generator.hpp"
#include "common/step_cancel.hpp"
#include "common/step_runner.hpp"

using namespace duet;

namespace {

std::string fixture(const std::string& name) { return std::string(DUET_FIXTURES_DIR) + "/models/" + name; }

// llama_gqa with a sliding window of `window` positions (a Mistral-style config), in a temp dir.
std::string windowed_llama(int64_t window) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("duet-window-" + std::to_string(window) + "-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::copy_file(fixture("llama_gqa") + "/model.safetensors", dir / "model.safetensors",
                fs::copy_options::overwrite_existing);
  std::ifstream in(fixture("llama_gqa") + "/config.json");
  auto cfg = nlohmann::json::parse(in);
  cfg["model_type"] = "mistral";
  cfg["sliding_window"] = window;
  std::ofstream(dir / "config.json") << cfg.dump();
  return dir.string();
}

double rel_err(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a.to(torch::kDouble) - b.to(torch::kDouble)).norm() / b.to(torch::kDouble).norm()).item<double>();
}

struct Seq {
  std::vector<int64_t> prompt;
  int join = 0, leave = 1 << 30;  // steps at which it starts and is abandoned
  int64_t new_tokens = 6;
  // filled by a run: generated tokens and the last hidden state behind each
  std::vector<int64_t> tokens;
  std::vector<torch::Tensor> hidden;
};

// One at a time: each sequence alone through a LocalBackbone, prompt in one forward.
void run_alone(const Checkpoint& ck, const EdgePieces& edge, std::vector<Seq>& seqs) {
  for (auto& s : seqs) {
    LocalBackbone bb(ck, LoadOptions{}, ck.config().max_positions);
    auto h = bb.forward(edge.embedding->forward(torch::tensor(s.prompt), 0), 0, true);
    int64_t pos = static_cast<int64_t>(s.prompt.size());
    for (int64_t i = 0; i < s.new_tokens; ++i) {
      s.hidden.push_back(h);
      s.tokens.push_back(edge.logits(h).argmax(-1).item<int64_t>());
      h = bb.forward(edge.embedding->forward(torch::tensor({s.tokens.back()}), pos), pos, true);
      ++pos;
    }
  }
}

// Together: each step takes a prefill chunk (<= chunk positions) or a decode row of every live
// sequence, in one StepRunner::run. Returns the number of steps that were all decode.
int run_batched(const Checkpoint& ck, const EdgePieces& edge, std::vector<Seq>& seqs, StepRunnerOptions opts,
                c10::Device dev = torch::kCPU, size_t* graphs = nullptr, int64_t chunk = 4) {
  const auto& c = ck.config();
  std::vector<std::unique_ptr<Block>> blocks;
  std::vector<const Block*> ptrs;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks.push_back(load_block(ck, i, LoadOptions{torch::kFloat, dev}));
    ptrs.push_back(blocks.back().get());
  }
  KvBlockAllocator alloc(64);
  StepRunner runner(ptrs, alloc.num_blocks(), 4, torch::kFloat, dev, opts);  // grows as blocks are used
  std::vector<BlockTable> tables(seqs.size());
  std::vector<int64_t> done(seqs.size(), 0);  // positions in the cache
  int decode_steps = 0;
  for (int step = 0;; ++step) {
    StepBatch batch;
    std::vector<size_t> who;
    std::vector<torch::Tensor> xs;
    bool live = false;
    for (size_t i = 0; i < seqs.size(); ++i) {
      auto& s = seqs[i];
      const auto P = static_cast<int64_t>(s.prompt.size());
      if (step == s.leave) alloc.release(tables[i]);  // abandoned: its blocks go to later sequences
      if (step < s.join || step >= s.leave || static_cast<int64_t>(s.tokens.size()) == s.new_tokens) continue;
      live = true;
      std::vector<int64_t> ids;
      const int64_t start = done[i];
      if (start < P) ids.assign(s.prompt.begin() + start, s.prompt.begin() + std::min(P, start + chunk));
      else ids = {s.tokens.back()};
      REQUIRE(alloc.ensure(tables[i], start + static_cast<int64_t>(ids.size())));
      batch.rows.push_back({&tables[i], start, static_cast<int64_t>(ids.size())});
      xs.push_back(edge.embedding->forward(torch::tensor(ids), start));
      who.push_back(i);
    }
    if (!live) break;
    if (batch.rows.empty()) continue;
    decode_steps += batch.all_decode();
    auto y = runner.run(batch, torch::cat(xs).to(dev)).cpu();
    REQUIRE(y.size(0) == batch.tokens());
    int64_t off = 0;
    for (size_t r = 0; r < batch.rows.size(); ++r) {
      const auto& row = batch.rows[r];
      auto& s = seqs[who[r]];
      done[who[r]] = row.start + row.n;
      tables[who[r]].length = row.start + row.n;
      off += row.n;
      if (done[who[r]] >= static_cast<int64_t>(s.prompt.size())) {  // prompt complete: a token
        auto h = y.narrow(0, off - 1, 1);
        s.hidden.push_back(h);
        s.tokens.push_back(edge.logits(h).argmax(-1).item<int64_t>());
      }
    }
  }
  for (auto& t : tables) alloc.release(t);
  REQUIRE(alloc.used_blocks() == 0);
  if (graphs) *graphs = runner.graphs_captured();
  return decode_steps;
}

// ids within the model's vocabulary (the newer fixtures have 64 tokens)
std::vector<Seq> schedule(int64_t vocab = 128) {
  std::vector<Seq> s(5);
  s[0].prompt = {1, 17, 42, 99, 5, 63, 120, 7, 88};  // 9: three chunks
  s[1].prompt = {3};                                  // a one-token prompt is a decode row at once
  s[2].prompt = {5, 6, 7, 8, 9, 10};
  s[2].join = 2;
  s[3].prompt = {11, 12, 13};
  s[3].join = 1;
  s[3].leave = 4;  // abandoned mid-stream
  s[3].new_tokens = 6;
  s[4].prompt = {21, 22, 23, 24, 25};
  s[4].join = 5;  // joins after s[3] left, reusing its blocks
  s[4].new_tokens = 12;  // to position 17: past the 16 of rope_dynamic's and phi3_longrope's original context
  for (auto& q : s)
    for (auto& id : q.prompt) id %= vocab;
  return s;
}

void compare(const std::vector<Seq>& got, const std::vector<Seq>& want) {
  for (size_t i = 0; i < got.size(); ++i) {
    CAPTURE(i);
    const size_t n = got[i].tokens.size();  // an abandoned sequence stops early
    REQUIRE(n > 0);
    REQUIRE(n <= want[i].tokens.size());
    DOCTEST_CHECK(std::vector<int64_t>(want[i].tokens.begin(), want[i].tokens.begin() + n) == got[i].tokens);
    for (size_t t = 0; t < n; ++t) {
      CAPTURE(t);
      DOCTEST_CHECK(rel_err(got[i].hidden[t], want[i].hidden[t]) <= 1e-5);
    }
  }
}

}  // namespace

TEST_CASE("batched steps == one sequence at a time (llama GQA, qwen2 bias, gpt2, sliding window, Gemma, Phi-3)") {
  torch::NoGradGuard ng;
  // gemma3: local and global layers in one stage (each masks its own window); gemma2: soft-caps;
  // phi3_longrope and rope_dynamic: per-position RoPE past the original context
  for (const std::string& dir : {fixture("llama_gqa"), fixture("qwen2_bias"), fixture("gpt2"), windowed_llama(4),
                                 fixture("gemma3"), fixture("gemma2"), fixture("phi3_longrope"), fixture("rope_dynamic")}) {
    CAPTURE(dir);
    Checkpoint ck(dir);
    auto edge = EdgePieces::load(ck, LoadOptions{});
    auto want = schedule(ck.config().vocab_size);
    run_alone(ck, edge, want);
    auto got = schedule(ck.config().vocab_size);
    const int decode_steps = run_batched(ck, edge, got, {});
    REQUIRE(decode_steps > 2);
    compare(got, want);
    REQUIRE(got[3].tokens.size() < want[3].tokens.size());  // it did leave early
  }
}

TEST_CASE("padded all-decode steps (the CUDA graph arithmetic, eagerly) == exact steps") {
  torch::NoGradGuard ng;
  for (const std::string& dir : {fixture("llama_gqa"), fixture("gpt2"), windowed_llama(3), fixture("gemma3")}) {
    CAPTURE(dir);
    Checkpoint ck(dir);
    auto edge = EdgePieces::load(ck, LoadOptions{});
    auto exact = schedule(ck.config().vocab_size);
    run_batched(ck, edge, exact, {});
    auto padded = schedule(ck.config().vocab_size);
    StepRunnerOptions o;
    o.pad_decode = true;
    run_batched(ck, edge, padded, o);
    compare(padded, exact);
  }
}

TEST_CASE("on CUDA: batched steps (graph replays for all-decode steps) == the CPU's exact steps") {
  if (!torch::cuda::is_available()) {
    MESSAGE("no CUDA device: skipped");
    return;
  }
  torch::NoGradGuard ng;
  for (const std::string& dir :
       {fixture("llama_gqa"), fixture("gpt2"), windowed_llama(3), fixture("gemma3"), fixture("phi3_longrope")}) {
    CAPTURE(dir);
    Checkpoint ck(dir);
    auto edge = EdgePieces::load(ck, LoadOptions{});
    auto cpu = schedule(ck.config().vocab_size);
    run_batched(ck, edge, cpu, {});
    auto gpu = schedule(ck.config().vocab_size);
    size_t graphs = 0;
    run_batched(ck, edge, gpu, {}, torch::Device(torch::kCUDA, 0), &graphs);
    if (StepRunner::graphs_available()) DOCTEST_CHECK(graphs > 0);
    for (size_t i = 0; i < gpu.size(); ++i) {
      CAPTURE(i);
      DOCTEST_CHECK(gpu[i].tokens == cpu[i].tokens);
      for (size_t t = 0; t < gpu[i].tokens.size(); ++t) DOCTEST_CHECK(rel_err(gpu[i].hidden[t], cpu[i].hidden[t]) <= 1e-4);
    }
  }
}

TEST_CASE("a sliding window changes the result past the window and not before it") {
  torch::NoGradGuard ng;
  Checkpoint full(fixture("llama_gqa")), win(windowed_llama(4));
  REQUIRE(win.config().sliding_window == 4);
  LocalBackbone a(full, LoadOptions{}, 32), b(win, LoadOptions{}, 32);
  auto edge = EdgePieces::load(full, LoadOptions{});
  auto x = edge.embedding->forward(torch::tensor({1, 17, 42, 99, 5, 63, 120, 7}), 0);
  auto ya = a.forward(x, 0, false), yb = b.forward(x, 0, false);
  REQUIRE(rel_err(yb.narrow(0, 0, 4), ya.narrow(0, 0, 4)) <= 1e-6);  // all keys inside the window
  REQUIRE(rel_err(yb.narrow(0, 4, 4), ya.narrow(0, 4, 4)) > 1e-3);
  // decode rows past the window (their gather starts mid-sequence) == one prefill
  b.reset();
  std::vector<torch::Tensor> parts{b.forward(x.narrow(0, 0, 2), 0, false)};
  for (int64_t p = 2; p < 8; ++p) parts.push_back(b.forward(x.narrow(0, p, 1), p, false));
  REQUIRE(rel_err(torch::cat(parts), yb) <= 1e-5);
}

TEST_CASE("keep_outputs: each row's last `out` positions, in row order; all of them by default") {
  BlockTable a{{1}, 0}, b{{2}, 0}, c{{3}, 0};
  StepBatch batch;
  batch.rows.push_back({&a, 0, 4, 0});   // a prompt chunk before the prompt's end: nothing
  batch.rows.push_back({&b, 0, 3, 1});   // the end of a prompt: its last position
  batch.rows.push_back({&c, 5, 2, -1});  // drafts verified: every position
  const auto y = torch::arange(9 * 2, torch::kFloat).reshape({9, 2});  // row i holds 2i, 2i+1
  REQUIRE(batch.tokens() == 9);
  REQUIRE(batch.outputs() == 3);
  const auto kept = keep_outputs(batch, y);
  REQUIRE(kept.size(0) == 3);
  CHECK(torch::equal(kept, y.index_select(0, torch::tensor({6, 7, 8}, torch::kLong))));
  // nothing asked of any row: an empty [0, H]
  StepBatch none;
  none.rows.push_back({&a, 0, 4, 0});
  CHECK(keep_outputs(none, y.narrow(0, 0, 4)).sizes() == torch::IntArrayRef({0, 2}));
  // rows built without out (the monolithic path, tests): every position, the same tensor
  StepBatch all;
  all.rows.push_back({&a, 0, 4});
  CHECK(keep_outputs(all, y.narrow(0, 0, 4)).data_ptr() == y.data_ptr());
  // a y that is not the step's: refused, not read past its end
  CHECK_THROWS_AS(keep_outputs(batch, y.narrow(0, 0, 8)), std::invalid_argument);
  // out outside [-1, n] is refused by validate
  KvBlockAllocator alloc(8);
  BlockTable t;
  REQUIRE(alloc.ensure(t, 4));
  StepBatch bad;
  bad.rows.push_back({&t, 0, 4, 5});
  CHECK_THROWS_WITH_AS(bad.validate(alloc.block_size(), alloc.num_blocks()), doctest::Contains("out 5"),
                       std::invalid_argument);
}

TEST_CASE("a last stage runs its last layer past attention for the asked positions only: == every position, then kept") {
  torch::NoGradGuard ng;
  for (const std::string& dir : {fixture("llama_gqa"), fixture("gpt2"), fixture("gemma3")}) {
    CAPTURE(dir);
    Checkpoint ck(dir);
    auto edge = EdgePieces::load(ck, LoadOptions{});
    std::vector<std::unique_ptr<Block>> blocks;
    std::vector<const Block*> ptrs;
    for (int64_t i = 0; i < ck.config().num_layers; ++i) {
      blocks.push_back(load_block(ck, i, LoadOptions{}));
      ptrs.push_back(blocks.back().get());
    }
    KvBlockAllocator alloc(16);
    StepRunner runner(ptrs, alloc.num_blocks(), 4, torch::kFloat, torch::kCPU);
    BlockTable a, b, c;
    for (auto* t : {&a, &b, &c}) REQUIRE(alloc.ensure(*t, 6));
    const auto x = edge.embedding->forward(torch::tensor({1, 7, 9, 3, 5, 2, 8, 4, 6, 11, 12, 13}), 0);
    StepBatch batch;
    batch.rows.push_back({&a, 0, 5, 0});   // a prompt chunk before its end: nothing
    batch.rows.push_back({&b, 0, 4, 1});   // a prompt's end: its last position
    batch.rows.push_back({&c, 0, 3, -1});  // every position
    const auto every = runner.run(batch, x, StepOutput::every_position);
    REQUIRE(every.size(0) == 12);
    const auto asked = runner.run(batch, x, StepOutput::asked);  // the same K/V written again
    REQUIRE(asked.size(0) == 4);
    CHECK(rel_err(asked, keep_outputs(batch, every)) <= 1e-6);
    // nothing asked of any row: [0, H], every position's K/V written all the same
    StepBatch none;
    none.rows.push_back({&a, 0, 5, 0});
    CHECK(runner.run(none, x.narrow(0, 0, 5), StepOutput::asked).size(0) == 0);
    a.length = 5;
    StepBatch next;  // a's next position attends over what the step above wrote
    next.rows.push_back({&a, 5, 1});
    const auto after = runner.run(next, x.narrow(0, 11, 1), StepOutput::asked);
    LocalBackbone alone(ck, LoadOptions{}, ck.config().max_positions);
    alone.forward(x.narrow(0, 0, 5), 0, false);
    CHECK(rel_err(after, alone.forward(x.narrow(0, 11, 1), 5, true)) <= 1e-5);
    for (auto* t : {&a, &b, &c}) alloc.release(*t);
  }
}

TEST_CASE("StepRunner buckets") {
  REQUIRE(StepRunner::batch_bucket(1) == 1);
  REQUIRE(StepRunner::batch_bucket(3) == 4);
  REQUIRE(StepRunner::batch_bucket(64) == 64);
  REQUIRE(StepRunner::batch_bucket(100) == 128);
  REQUIRE(StepRunner::batch_bucket(129) == 0);
  REQUIRE(StepRunner::context_bucket(1) == 64);
  REQUIRE(StepRunner::context_bucket(65) == 128);
  REQUIRE(StepRunner::context_bucket(1025) == 2048);
  REQUIRE(StepRunner::context_bucket(3000) == 3072);
}

// Issue 20, item 8: a stopping daemon does not finish a long step. With the compute thread's
// StepCancelScope flag set, an eager step throws StepCancelled before its next block; a scope
// over nullptr (a CUDA graph capture) switches the check off inside it.
TEST_CASE("a step stops between blocks once its StepCancelScope flag is set") {
  Checkpoint ck(fixture("llama_gqa"));
  const auto& c = ck.config();
  std::vector<std::unique_ptr<Block>> blocks;
  std::vector<const Block*> ptrs;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    blocks.push_back(load_block(ck, i, LoadOptions{}));
    ptrs.push_back(blocks.back().get());
  }
  KvBlockAllocator alloc(8);
  StepRunner runner(ptrs, alloc.num_blocks(), 4, torch::kFloat, torch::kCPU);
  BlockTable table;
  REQUIRE(alloc.ensure(table, 5));
  StepBatch batch;
  batch.rows.push_back({&table, 0, 5});
  const auto x = torch::randn({5, c.hidden_size});
  std::atomic<bool> stop{false};
  const StepCancelScope scope(&stop);
  REQUIRE(runner.run(batch, x).size(0) == 5);  // flag clear: the step runs
  stop = true;
  REQUIRE_THROWS_AS(runner.run(batch, x), StepCancelled);
  {
    const StepCancelScope off(nullptr);
    REQUIRE(runner.run(batch, x).size(0) == 5);
  }
  REQUIRE_THROWS_AS(runner.run(batch, x), StepCancelled);  // the outer scope is back
}
