// The wire codecs (common/wire/tensor_frames): each round-trips within the error it states in
// protocol/dtype.hpp and docs/SPECULATION.md, frames have the sizes the protocol's checks expect,
// and the edge config's drafting and edge-blocks settings are checked.
#include "../common/torch_doctest.hpp"

#include "common/wire/tensor_frames.hpp"
#include "edge/client/edge_config.hpp"
#include "protocol/validate.hpp"
#include "../common/model_writer.hpp"

using namespace duet;
namespace p = duet::protocol;

namespace {

// Hidden states as they come: mostly small, a few large outliers per row, an all-zero row.
torch::Tensor activations() {
  torch::manual_seed(7);
  auto x = torch::randn({9, 256});
  x.index_put_({0, 3}, 80.0f);
  x.index_put_({4, 100}, -300.0f);
  x.index_put_({7}, 0.0f);
  x.index_put_({8}, torch::randn({256}) * 1e-3);
  return x;
}

}  // namespace

TEST_CASE("each wire codec round-trips within its stated error") {
  const auto x = activations();
  const auto ax = x.abs();
  SUBCASE("fp32 is exact") { CHECK(torch::equal(wire_round_trip(x, p::WireDtype::f32), x)); }
  SUBCASE("bf16: relative error <= 2^-8 per element") {
    auto err = (wire_round_trip(x, p::WireDtype::bf16) - x).abs();
    CHECK((err <= ax * std::ldexp(1.0, -8)).all().item<bool>());
    CHECK(err.max().item<float>() > 0);
  }
  SUBCASE("fp16: relative error <= 2^-11 in its normal range") {
    auto err = (wire_round_trip(x, p::WireDtype::f16) - x).abs();
    CHECK((err <= ax * std::ldexp(1.0, -11) + std::ldexp(1.0, -25)).all().item<bool>());
  }
  SUBCASE("int8: error <= max|row| / 254 per element, zero rows stay zero") {
    auto y = wire_round_trip(x, p::WireDtype::i8);
    auto bound = std::get<0>(ax.max(1, /*keepdim=*/true)) / 254.0 * (1 + 1e-5);
    auto err = (y - x).abs();
    CHECK((err <= bound).all().item<bool>());
    CHECK(torch::equal(y[7], x[7]));
    // the outlier row is coarse, the others are not hurt by it: scales are per row
    CHECK(err[1].max().item<float>() < err[4].max().item<float>());
  }
}

TEST_CASE("int8 frames: values then one fp32 scale per row, as the protocol's size check expects") {
  const auto x = activations();
  p::TensorDesc desc;
  auto frame = tensor_to_frame(x, p::WireDtype::i8, desc);
  CHECK(desc.dtype == p::WireDtype::i8);
  CHECK(desc.shape == std::vector<uint64_t>{9, 256});
  CHECK(frame.size() == 9 * 256 + 9 * 4);
  CHECK(p::tensor_bytes(desc) == frame.size());
  CHECK_NOTHROW(p::check_tensor_frame("test", desc, frame.size()));
  // a truncated frame is refused, not read past its end
  p::FrameView short_view{static_cast<const std::byte*>(frame.data()), frame.size() - 1};
  CHECK_THROWS_AS(frame_to_tensor(short_view, desc, c10::Device(c10::kCPU), torch::kFloat), std::invalid_argument);
}

TEST_CASE("edge config: drafting and edge blocks") {
  auto dir = duet::test::make_temp_dir("edgecfg-draft");
  duet::test::write_text(dir + "/ok.toml", "[generate]\ndraft = \"ngram\"\ndraft_k = 5\ndraft_adaptive = false\n"
                                           "[cloud]\nedge_blocks = 2\n");
  auto c = edge::EdgeConfig::from_toml_file(dir + "/ok.toml");
  CHECK(c.draft == "ngram");
  CHECK(c.draft_k == 5);
  CHECK_FALSE(c.draft_adaptive);
  CHECK(c.edge_blocks == 2);
  duet::test::write_text(dir + "/mode.toml", "[generate]\ndraft = \"medusa\"\n");
  CHECK_THROWS_WITH_AS(edge::EdgeConfig::from_toml_file(dir + "/mode.toml"), doctest::Contains("medusa"),
                       std::invalid_argument);
  duet::test::write_text(dir + "/k.toml", "[generate]\ndraft = \"ngram\"\ndraft_k = 99\n");
  CHECK_THROWS_WITH_AS(edge::EdgeConfig::from_toml_file(dir + "/k.toml"),
                       doctest::Contains("'generate.draft_k' must be 1 to 32, not 99"), std::invalid_argument);
}
