// duet-codec-bench: what each wire codec costs in accuracy, on the monolithic path with the codec
// applied where the split path applies it (the edge's embeddings on the way up, the last block's
// hidden states on the way down, every step). For each codec against fp32 on the wire:
//   teacher-forced  the fp32 run's own tokens fed back, position by position: max |logit error|
//                   over every position and token, its mean per position, and how often the
//                   argmax (greedy token) agrees;
//   free-running    greedy generation with the codec: tokens equal to fp32's, the first divergence.
//   duet-codec-bench --model models/abc-folk --steps 1000 [--json out.json]
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "common/backbone.hpp"
#include "common/generator.hpp"
#include "common/wire/tensor_frames.hpp"
#include "protocol/dtype.hpp"

namespace {

namespace p = duet::protocol;

// The blocks in process, behind a wire codec both ways.
class CodecBackbone final : public duet::Backbone {
 public:
  CodecBackbone(duet::LocalBackbone& inner, p::WireDtype wire) : inner_(inner), wire_(wire) {}
  torch::Tensor forward(const torch::Tensor& hidden, int64_t start, bool last_only) override {
    auto up = duet::wire_round_trip(hidden, wire_);
    return duet::wire_round_trip(inner_.forward(up, start, last_only), wire_);
  }
  void reset() override { inner_.reset(); }

 private:
  duet::LocalBackbone& inner_;
  p::WireDtype wire_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"duet-codec-bench: max logit error and greedy agreement of each wire codec against fp32"};
  std::string model, json_path, prompt_ids = "1";
  int64_t steps = 1000;
  app.add_option("--model", model, "model folder")->required();
  app.add_option("--steps", steps, "positions to compare (teacher-forced) and tokens to generate (free-running)")
      ->check(CLI::PositiveNumber);
  app.add_option("--prompt-ids", prompt_ids, "prompt as comma-separated ids (default: 1, BOS)");
  app.add_option("--json", json_path, "write every number to this file");
  CLI11_PARSE(app, argc, argv);
  try {
    torch::NoGradGuard ng;
    std::vector<int32_t> prompt;
    for (size_t pos = 0; pos < prompt_ids.size();) {
      const size_t comma = prompt_ids.find(',', pos);
      prompt.push_back(std::stoi(prompt_ids.substr(pos, comma - pos)));
      pos = comma == std::string::npos ? prompt_ids.size() : comma + 1;
    }
    duet::Checkpoint ck(model);
    duet::LoadOptions o;  // fp32 compute on the CPU
    auto edge = duet::EdgePieces::load(ck, o);
    const int64_t max_pos = ck.config().max_positions;
    if (int64_t(prompt.size()) + steps > max_pos) steps = max_pos - int64_t(prompt.size());
    duet::LocalBackbone blocks(ck, o, max_pos);
    const c10::Device cpu(c10::kCPU);

    // fp32: the reference tokens (no stop: the full budget) and their logits
    duet::GenerationOptions g;
    g.max_new_tokens = steps;
    CodecBackbone ref_bb(blocks, p::WireDtype::f32);
    const auto ref = duet::generate(edge, ref_bb, prompt, g, cpu).tokens;
    std::vector<int32_t> seq = prompt;
    seq.insert(seq.end(), ref.begin(), ref.end() - 1);  // the inputs whose next-token logits are compared
    auto teacher = [&](p::WireDtype wire) {
      CodecBackbone bb(blocks, wire);
      bb.reset();
      std::vector<torch::Tensor> rows;
      const int64_t first = int64_t(prompt.size()) - 1;
      std::vector<int64_t> ids(seq.begin(), seq.begin() + first + 1);
      rows.push_back(edge.logits(bb.forward(edge.embedding->forward(torch::tensor(ids), 0), 0, true)));
      for (int64_t pos = first + 1; pos < int64_t(seq.size()); ++pos) {
        auto x = edge.embedding->forward(torch::tensor(std::vector<int64_t>{seq[size_t(pos)]}), pos);
        rows.push_back(edge.logits(bb.forward(x, pos, true)));
      }
      return torch::cat(rows);  // [steps, vocab]
    };
    const auto want = teacher(p::WireDtype::f32);
    nlohmann::json out;
    out["model"] = model;
    out["steps"] = steps;
    std::printf("%-6s %5s %14s %14s %12s %12s %14s\n", "codec", "bytes", "max|dlogit|", "mean max/pos", "argmax agree",
                "free equal", "first diverge");
    for (auto wire : {p::WireDtype::f32, p::WireDtype::bf16, p::WireDtype::f16, p::WireDtype::i8}) {
      const auto got = teacher(wire);
      auto err = (got - want).abs();
      const double max_err = err.max().item<double>();
      const double mean_row_max = std::get<0>(err.max(1)).mean().item<double>();
      const double agree = got.argmax(1).eq(want.argmax(1)).to(torch::kDouble).mean().item<double>();
      CodecBackbone bb(blocks, wire);
      const auto free = duet::generate(edge, bb, prompt, g, cpu).tokens;
      int64_t equal = 0, first_diff = -1;
      for (size_t i = 0; i < free.size() && i < ref.size(); ++i) {
        if (free[i] == ref[i]) ++equal;
        else if (first_diff < 0) first_diff = int64_t(i);
      }
      const int64_t hidden = ck.config().hidden_size;
      const double bytes = double(hidden * int64_t(p::element_size(wire)) + int64_t(p::row_overhead_bytes(wire)));
      std::printf("%-6s %5.0f %14.3g %14.3g %11.2f%% %6lld/%-5lld %14s\n", std::string(p::dtype_name(wire)).c_str(),
                  bytes, max_err, mean_row_max, 100 * agree, (long long)equal, (long long)free.size(),
                  first_diff < 0 ? "none" : std::to_string(first_diff).c_str());
      out["codecs"].push_back({{"codec", p::dtype_name(wire)},
                               {"bytes_per_row", bytes},
                               {"max_abs_logit_error", max_err},
                               {"mean_row_max_logit_error", mean_row_max},
                               {"argmax_agreement", agree},
                               {"free_running_equal_tokens", equal},
                               {"free_running_tokens", free.size()},
                               {"first_divergence", first_diff}});
    }
    if (!json_path.empty()) std::ofstream(json_path) << out.dump(2) << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "duet-codec-bench: %s\n", e.what());
    return 1;
  }
}
