"""NotaGen's architecture built from transformers' GPT-2 classes, with NotaGen's state-dict names
(GPU machine: torch + transformers). Used by make_fixtures.py, train_folk.py and the benchmark.

  patch_level_decoder.patch_embedding    Linear(PATCH_SIZE*128 -> hidden) of one-hot characters
  patch_level_decoder.base               GPT2Model (vocab 1, unused wte), patch_length positions
  char_level_decoder.base                GPT2LMHeadModel (vocab 128, PATCH_SIZE+1 positions); its
                                         position 0 input is the patch-level output
Generation here is NotaGen's reference loop: both decoders re-run over everything, no KV cache.
"""
import torch
import torch.nn.functional as F
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Model

import patchilizer as pz

VOCAB = 128


def gpt2_config(hidden, layers, heads, positions, vocab, dropout):
    kw = dict(n_embd=hidden, n_layer=layers, n_head=heads, n_positions=positions, vocab_size=vocab,
              activation_function="gelu_new", layer_norm_epsilon=1e-5, resid_pdrop=dropout,
              embd_pdrop=dropout, attn_pdrop=dropout, bos_token_id=pz.BOS, eos_token_id=pz.EOS)
    try:
        return GPT2Config(attn_implementation="eager", **kw)
    except TypeError:
        return GPT2Config(**kw)


class PatchLevel(torch.nn.Module):
    def __init__(self, cfg, patch_size):
        super().__init__()
        self.patch_size = patch_size
        self.patch_embedding = torch.nn.Linear(patch_size * VOCAB, cfg.n_embd)
        self.base = GPT2Model(cfg)

    def embed(self, patches):                       # [B, T, P] ids -> [B, T, H]
        oh = F.one_hot(patches, VOCAB).to(self.patch_embedding.weight.dtype)
        return self.patch_embedding(oh.reshape(*patches.shape[:-1], self.patch_size * VOCAB))

    def forward(self, patches):                     # [B, T, P] -> [B, T, H] (after ln_f)
        return self.base(inputs_embeds=self.embed(patches)).last_hidden_state


class CharLevel(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.base = GPT2LMHeadModel(cfg)

    def forward(self, encoded, tokens):
        """encoded [N, H], tokens [N, L] (tokens[:, 0] = BOS, replaced by encoded) -> logits [N, L, 128]."""
        emb = self.base.transformer.wte(tokens)
        emb = torch.cat([encoded.unsqueeze(1).to(emb.dtype), emb[:, 1:]], dim=1)
        return self.base(inputs_embeds=emb).logits


class NotaGen(torch.nn.Module):
    def __init__(self, hidden, patch_layers, char_layers, patch_length, heads=None,
                 patch_size=pz.PATCH_SIZE, dropout=0.0):
        super().__init__()
        heads = heads or max(1, hidden // 64)
        self.patch_size, self.patch_length, self.hidden = patch_size, patch_length, hidden
        self.patch_level_decoder = PatchLevel(
            gpt2_config(hidden, patch_layers, heads, patch_length, 1, dropout), patch_size)
        self.char_level_decoder = CharLevel(
            gpt2_config(hidden, char_layers, heads, patch_size + 1, VOCAB, dropout))

    def train_loss(self, patches, n_patches):
        """patches [B, T, P] (right-padded with PAD patches), n_patches [B] -> (sum NLL, chars)."""
        enc = self.patch_level_decoder(patches)                       # [B, T, H]
        B, T, P = patches.shape
        pos = torch.arange(T, device=patches.device)
        has_next = (pos[None, :] + 1) < n_patches[:, None]            # [B, T]
        src = enc[:, :-1][has_next[:, :-1]]                           # [N, H]
        tgt = patches[:, 1:][has_next[:, :-1]]                        # [N, P]
        tokens = torch.cat([torch.full_like(tgt[:, :1], pz.BOS), tgt], dim=1)   # [N, P+1]
        logits = self.char_level_decoder(src, tokens)[:, :-1].float()           # [N, P, 128]
        labels = tgt.masked_fill(tgt == pz.PAD, -100)
        nll = F.cross_entropy(logits.reshape(-1, VOCAB), labels.reshape(-1), ignore_index=-100,
                              reduction="sum")
        return nll, int((labels != -100).sum())


# ------------------------------------------------------------------ sampling
def pick(logits, mode, temperature, top_k, top_p, gen):
    """logits [N, 128] -> ids [N]. mode 'greedy' | 'notagen' (softmax, top-k, top-p, then
    temperature on the kept probabilities, as NotaGen's samplings) | 'hf' (temperature, top-k,
    top-p on the logits, as transformers)."""
    logits = logits.float()
    if mode == "greedy":
        return logits.argmax(-1)
    if mode == "hf":
        logits = logits / temperature
    probs = torch.softmax(logits, -1)
    if top_k and top_k > 0:
        kth = torch.topk(probs, min(top_k, probs.shape[-1]), dim=-1).values[:, -1:]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    if top_p < 1.0:
        sp, si = torch.sort(probs, -1, descending=True)
        cum = torch.cumsum(sp, -1)
        keep_sorted = (cum - sp) < top_p            # keep up to and including the first cum >= p
        keep = torch.zeros_like(keep_sorted).scatter(-1, si, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum(-1, keepdim=True)
    if mode == "notagen" and temperature != 1.0:
        probs = torch.where(probs > 0, probs.clamp_min(1e-30) ** (1.0 / temperature), probs)
        probs = probs / probs.sum(-1, keepdim=True)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


@torch.no_grad()
def next_patches(model, seqs, prefixes, mode="greedy", temperature=1.0, top_k=0, top_p=1.0,
                 gen=None, record_logits=False):
    """NotaGen's reference step for a batch of equal-length patch sequences, no KV cache:
    seqs [B, T, P] ids, prefixes: list of B lists of forced first characters.
    Returns (patches [B, P] as lists, logits [B, P, 128] or None)."""
    enc = model.patch_level_decoder(seqs)[:, -1]                      # [B, H]
    B, P = seqs.shape[0], model.patch_size
    tokens = torch.full((B, 1), pz.BOS, dtype=torch.long, device=seqs.device)
    out = [[] for _ in range(B)]
    rec = []
    for j in range(P):
        logits = model.char_level_decoder(enc, tokens)[:, -1]         # [B, 128]
        if record_logits:
            rec.append(logits.float().cpu())
        nxt = pick(logits, mode, temperature, top_k, top_p, gen)
        for b in range(B):
            if j < len(prefixes[b]):
                nxt[b] = prefixes[b][j]
            out[b].append(int(nxt[b]))
        tokens = torch.cat([tokens, nxt[:, None]], dim=1)
    return out, (torch.stack(rec, 1) if record_logits else None)
