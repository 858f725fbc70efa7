#include "common/attention.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "common/ops.hpp"
#if DUET_WITH_CUDA_KERNELS
#include "common/cuda/torch_kernels.hpp"
#endif

namespace duet {

int64_t decode_keys(int64_t start, int64_t window) {
  return window > 0 ? std::min(start + 1, window) : start + 1;
}

namespace {

// First position a query at `pos` may see.
int64_t first_key(int64_t pos, int64_t window) { return window > 0 ? std::max<int64_t>(0, pos - window + 1) : 0; }

int64_t slot_of(const BlockTable& t, int64_t pos, int64_t bs, int64_t& max_block) {
  const int32_t b = t.blocks[static_cast<size_t>(pos / bs)];
  if (b < 1) throw std::invalid_argument("a block table names block " + std::to_string(b) + " (scratch or invalid)");
  max_block = std::max<int64_t>(max_block, b);
  return int64_t(b) * bs + pos % bs;
}

// The kernels' rows of a step that is not all decode: per token its batch row's table (from the
// block of the row's first key) and its own keys (causal, under the window).
void build_paged_rows(const StepBatch& batch, int64_t bs, int64_t window, c10::Device device, AttentionInput& in) {
  const int64_t T = in.tokens, R = static_cast<int64_t>(batch.rows.size());
  int64_t nb = 1;
  for (const auto& r : batch.rows) nb = std::max(nb, (r.start + r.n - 1) / bs - first_key(r.start, window) / bs + 1);
  auto host = torch::zeros({R * nb + 3 * T}, torch::TensorOptions().dtype(torch::kLong).pinned_memory(device.is_cuda()));
  int64_t* tables = host.data_ptr<int64_t>();
  int64_t* tix = tables + R * nb;
  int64_t* koff = tix + T;
  int64_t* klen = koff + T;
  int64_t tok = 0;
  for (int64_t i = 0; i < R; ++i) {
    const auto& r = batch.rows[static_cast<size_t>(i)];
    const int64_t fb = first_key(r.start, window) / bs, last = (r.start + r.n - 1) / bs;
    for (int64_t b = fb; b <= last; ++b) tables[i * nb + b - fb] = r.table->blocks[static_cast<size_t>(b)];
    in.paged.max_span = std::max(in.paged.max_span, r.n);
    for (int64_t j = 0; j < r.n; ++j, ++tok) {
      const int64_t p = r.start + j, kf = first_key(p, window);
      tix[tok] = i;
      koff[tok] = kf - fb * bs;
      klen[tok] = p + 1 - kf;
      in.paged.max_keys = std::max(in.paged.max_keys, klen[tok]);
    }
  }
  auto dev = host.to(device, torch::kLong, /*non_blocking=*/true);
  in.paged.tables = dev.narrow(0, 0, R * nb).view({R, nb});
  in.paged.table_index = dev.narrow(0, R * nb, T);
  in.paged.key_offset = dev.narrow(0, R * nb + T, T);
  in.paged.key_len = dev.narrow(0, R * nb + 2 * T, T);
}

}  // namespace

AttentionInput build_attention_input(const StepBatch& batch, int64_t bs, int64_t window, c10::Device device,
                                     DecodePadding pad) {
  AttentionInput in;
  in.window = window;
  const int64_t real_tokens = batch.tokens();
  int64_t B = 0, L = 0;
  for (const auto& r : batch.rows)
    if (r.n == 1) {
      ++B;
      L = std::max(L, decode_keys(r.start, window));
    }
  in.decode_only = B == static_cast<int64_t>(batch.rows.size());
  int64_t Bp = B;
  if (pad.rows > 0 || pad.keys > 0) {
    if (!in.decode_only || pad.rows < B || pad.keys < L)
      throw std::invalid_argument("a padded step must be all single positions within its bucket (" +
                                  std::to_string(B) + " rows, " + std::to_string(L) + " keys)");
    Bp = pad.rows;
    L = pad.keys;
  }
  const int64_t T = in.decode_only ? Bp : real_tokens;
  in.tokens = T;
  in.decode_rows = Bp;
  // blocks of a decode row's table that its L keys can span, starting mid-block
  const int64_t nb = Bp > 0 ? (bs - 1 + L - 1) / bs + 1 : 0;

  int64_t span_keys = 0;
  for (const auto& r : batch.rows)
    if (r.n > 1) span_keys += r.start + r.n - first_key(r.start, window);
  const int64_t total = 2 * T + 2 * Bp + Bp * nb + (in.decode_only ? 0 : B) + span_keys;
  auto host = torch::zeros({total}, torch::TensorOptions().dtype(torch::kLong).pinned_memory(device.is_cuda()));
  int64_t* h = host.data_ptr<int64_t>();
  int64_t* pos = h;
  int64_t* slots = h + T;
  int64_t* koff = h + 2 * T;
  int64_t* klen = koff + Bp;
  int64_t* tables = klen + Bp;
  int64_t* dtok = tables + Bp * nb;
  int64_t* sk = dtok + (in.decode_only ? 0 : B);
  // padded rows: position 0, write into the scratch block (slot 0), see its first key only
  std::fill(klen, klen + Bp, 1);

  int64_t tok = 0, d = 0;
  struct SpanAt { int64_t token, n, start, kstart, offset; };
  std::vector<SpanAt> span_at;
  int64_t sk_off = 0;
  for (const auto& r : batch.rows) {
    if (!r.table || r.n < 1 || static_cast<int64_t>(r.table->blocks.size()) * bs < r.start + r.n)
      throw std::invalid_argument("a step row lacks a block table covering its positions");
    for (int64_t i = 0; i < r.n; ++i) {
      pos[tok + i] = r.start + i;
      slots[tok + i] = slot_of(*r.table, r.start + i, bs, in.max_block);
    }
    if (r.n == 1) {
      const int64_t ctx = r.start + 1, ks = first_key(r.start, window);
      koff[d] = ks % bs;
      klen[d] = ctx - ks;
      const int64_t first_block = ks / bs, used = (ctx + bs - 1) / bs;
      for (int64_t j = 0; j < nb && first_block + j < used; ++j)
        tables[d * nb + j] = slot_of(*r.table, (first_block + j) * bs, bs, in.max_block) / bs;
      if (!in.decode_only) dtok[d] = tok;
      ++d;
    } else {
      const int64_t ks = first_key(r.start, window);
      for (int64_t p = ks; p < r.start + r.n; ++p) sk[sk_off + p - ks] = slot_of(*r.table, p, bs, in.max_block);
      span_at.push_back({tok, r.n, r.start, ks, sk_off});
      sk_off += r.start + r.n - ks;
    }
    tok += r.n;
  }

  auto dev = host.to(device, torch::kLong, /*non_blocking=*/true);
  auto lopts = torch::TensorOptions().dtype(torch::kLong).device(device);
  in.positions = dev.narrow(0, 0, T);
  in.write_slots = dev.narrow(0, T, T);
  if (Bp > 0) {
    auto off = dev.narrow(0, 2 * T, Bp).unsqueeze(1);          // [Bp, 1]
    auto len = dev.narrow(0, 2 * T + Bp, Bp).unsqueeze(1);     // [Bp, 1]
    auto tab = dev.narrow(0, 2 * T + 2 * Bp, Bp * nb).view({Bp, nb});
    auto ar = torch::arange(L, lopts).unsqueeze(0);            // [1, L]
    auto kp = off + ar;                                        // [Bp, L] offset from the row's first block
    in.decode_slots = tab.gather(1, torch::div(kp, bs, "floor")) * bs + kp.remainder(bs);
    in.decode_mask = ar < len;
    if (!in.decode_only) in.decode_tokens = dev.narrow(0, 2 * T + 2 * Bp + Bp * nb, B);
    if (in.decode_only) {  // the kernels read the same tables
      in.paged.tables = tab;
      in.paged.key_offset = dev.narrow(0, 2 * T, Bp);
      in.paged.key_len = dev.narrow(0, 2 * T + Bp, Bp);
      in.paged.max_keys = L;
      in.paged.max_span = 1;
    }
  }
  in.paged.block_size = bs;
  if (!in.decode_only) build_paged_rows(batch, bs, window, device, in);
  const int64_t sk_base = total - span_keys;
  for (const auto& s : span_at) {
    AttentionInput::Span sp;
    sp.token = s.token;
    sp.n = s.n;
    sp.start = s.start;
    sp.first_key = s.kstart;
    const int64_t K = s.start + s.n - s.kstart;
    sp.slots = dev.narrow(0, sk_base + s.offset, K);
    auto kpos = torch::arange(s.kstart, s.start + s.n, lopts).unsqueeze(0);  // [1, K]
    auto qpos = torch::arange(s.start, s.start + s.n, lopts).unsqueeze(1);   // [n, 1]
    sp.mask = kpos <= qpos;
    if (window > 0) sp.mask = sp.mask.logical_and(kpos > qpos - window);
    in.spans.push_back(std::move(sp));
  }
  return in;
}

namespace {

// Masks of `window` on top of an input built without one (its keys start at position 0).
const AttentionInput::WindowMasks& window_masks(const AttentionInput& in, int64_t window) {
  for (const auto& w : in.window_memo)
    if (w.window == window) return w;
  AttentionInput::WindowMasks w{window, {}, {}};
  if (in.decode_rows > 0) {
    const int64_t L = in.decode_slots.size(1);
    auto qpos = in.decode_only ? in.positions : in.positions.index_select(0, in.decode_tokens);  // [B]
    auto kpos = torch::arange(L, in.positions.options()).unsqueeze(0);                         // [1, L]
    w.decode = in.decode_mask.logical_and(kpos > qpos.unsqueeze(1) - window);
  }
  for (const auto& sp : in.spans) {
    auto kpos = torch::arange(sp.first_key, sp.first_key + sp.mask.size(1), in.positions.options()).unsqueeze(0);
    auto qpos = torch::arange(sp.start, sp.start + sp.n, in.positions.options()).unsqueeze(1);
    w.spans.push_back(sp.mask.logical_and(kpos > qpos - window));
  }
  in.window_memo.push_back(std::move(w));
  return in.window_memo.back();
}

}  // namespace

torch::Tensor attend(const AttentionInput& in, const LayerKvView& kv, const torch::Tensor& q, const torch::Tensor& k,
                     const torch::Tensor& v, double scale) {
  return attend(in, kv, q, k, v, LayerAttention{scale, 0.0, in.window});
}

torch::Tensor attend(const AttentionInput& in, const LayerKvView& kv, const torch::Tensor& q, const torch::Tensor& k,
                     const torch::Tensor& v, const LayerAttention& layer) {
  const int64_t T = q.size(0), qh = q.size(1), d = q.size(2), kvh = k.size(1);
  const double scale = layer.scale, cap = layer.softcap;
  if (in.window > 0 && layer.window != in.window)
    throw std::invalid_argument("a layer with sliding window " + std::to_string(layer.window) +
                                " in a step built for window " + std::to_string(in.window));
#if DUET_WITH_CUDA_KERNELS
  // The kernel gives each query token its own pass over its keys: right for decode rows and short
  // spans (drafts to verify, small prefill chunks), whose keys stay in L2 between the span's
  // tokens; a long prompt reads its keys O(n^2) times, where LibTorch's tiled attention over a
  // gathered copy is faster.
  constexpr int64_t kMaxKernelSpan = 256;
  if (in.paged.key_len.defined() && in.paged.max_span <= kMaxKernelSpan && cuda::kernels_enabled() &&
      cuda::paged_attention_usable(q, kv.k) && cuda::write_kv_usable(kv.k, k, v)) {
    cuda::write_kv(kv.k, kv.v, k, v, in.write_slots);
    const auto& p = in.paged;
    return cuda::paged_attention({&p.tables, &p.table_index, &p.key_offset, &p.key_len, p.block_size, p.max_keys,
                                  layer.window, scale, cap},
                                 kv.k, kv.v, q);
  }
#endif
  const AttentionInput::WindowMasks* wm =
      layer.window > 0 && in.window == 0 ? &window_masks(in, layer.window) : nullptr;
  kv.k.index_copy_(0, in.write_slots, k);
  kv.v.index_copy_(0, in.write_slots, v);

  torch::Tensor dec;  // [B, qh * d]
  if (in.decode_rows > 0) {
    const int64_t B = in.decode_rows, L = in.decode_slots.size(1);
    auto qd = in.decode_only ? q : q.index_select(0, in.decode_tokens);  // [B, qh, d]
    auto idx = in.decode_slots.reshape({-1});
    // Keys past a row's length are stale slots of reused blocks (or the scratch block): another
    // sequence's values, possibly NaN. Masking scores is not enough (0 * NaN = NaN in p @ V), so
    // they are replaced by zeros as they are read: masked keys contribute exactly nothing.
    auto valid = in.decode_mask.view({B, L, 1, 1});
    auto zero = torch::zeros({}, kv.k.options());
    auto kd = torch::where(valid, kv.k.index_select(0, idx).view({B, L, kvh, d}), zero).transpose(1, 2);  // [B, kvh, L, d]
    auto vd = torch::where(valid, kv.v.index_select(0, idx).view({B, L, kvh, d}), zero).transpose(1, 2);
    const auto& mask = wm ? wm->decode : in.decode_mask;
    dec = ops::grouped_attention(qd.unsqueeze(2), kd, vd, mask.unsqueeze(1), scale, cap).reshape({B, qh * d});
    if (in.decode_only) return dec;
  }
  auto out = torch::empty({T, qh * d}, q.options());
  if (dec.defined()) out.index_copy_(0, in.decode_tokens, dec);
  for (size_t i = 0; i < in.spans.size(); ++i) {
    const auto& sp = in.spans[i];
    auto qs = q.narrow(0, sp.token, sp.n).transpose(0, 1).unsqueeze(0);        // [1, qh, n, d]
    auto ks = kv.k.index_select(0, sp.slots).transpose(0, 1).unsqueeze(0);     // [1, kvh, K, d]
    auto vs = kv.v.index_select(0, sp.slots).transpose(0, 1).unsqueeze(0);
    const auto& mask = wm ? wm->spans[i] : sp.mask;
    auto o = ops::grouped_attention(qs, ks, vs, mask.unsqueeze(0), scale, cap);  // [1, qh, n, d]
    out.narrow(0, sp.token, sp.n).copy_(o.squeeze(0).transpose(0, 1).reshape({sp.n, qh * d}));
  }
  return out;
}

torch::Tensor apply_rope(const AttentionInput& in, const RopeTable& table, const torch::Tensor& x) {
#if DUET_WITH_CUDA_KERNELS
  if (cuda::kernels_enabled() && cuda::rope_usable(x, table.cos)) return cuda::rope(x, table.cos, table.sin, in.positions);
#endif
  const AttentionInput::RopeRows* rows = nullptr;
  for (const auto& r : in.rope_memo)
    if (r.table == &table) rows = &r;
  if (!rows) {
    in.rope_memo.push_back({&table, table.cos.index_select(0, in.positions).unsqueeze(1),
                            table.sin.index_select(0, in.positions).unsqueeze(1)});  // [T, 1, rotary_dim]
    rows = &in.rope_memo.back();
  }
  return RopeTable::apply_rows(x, rows->cos, rows->sin);
}

}  // namespace duet
