#!/usr/bin/env python3
"""Makes the tokenizer fixtures under tests/fixtures/tokenizers/.

Runs where Python has `tokenizers`, `transformers` and `sentencepiece` (the GPU machine); it needs
no network: every tokenizer is trained here, on the small text below, with small vocabularies.
For each tokenizer it writes `<name>/tokenizer.json` and `<name>/expected.json`, the latter
holding what the Python (Rust) implementation gives for a set of tricky strings, so that the C++
tokenizer in edge/tokenizer can be checked against it id for id.

    python3 scripts/make_tokenizer_fixtures.py --out tests/fixtures/tokenizers

The exact command used for the committed fixtures is in tests/fixtures/tokenizers/README.md.
"""
import argparse
import json
import os
import sys
import tempfile
import traceback

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything here is made locally

# ---------------------------------------------------------------------------------------------
# Training text: plain English, a little French/German, code, numbers, and ABC-like tunes
# written for this file. No CJK, no emoji: those stay unseen, to exercise byte fallback / unk.
PROSE = """\
The quick brown fox jumps over the lazy dog. It's a sunny day, isn't it? We'll see.
She sells sea shells by the sea shore; the shells she sells are surely seashells.
A tune is a sequence of notes; a melody is a tune that you can't get out of your head.
They've played the reel twice, and then they're going to play the jig three times.
I'm sure the fiddler's bow was made of horsehair, and the fiddle of spruce and maple.
In 1883 the book was printed with 1,059 tunes; in 1903 another had 2,009 of them.
Prices rose 3.14% in March, 12.5% in April, and 100% by the end of the year 2024.
The café on the corner serves crème brûlée and a naïve little rosé. Déjà vu!
Über den Wolken muss die Freiheit wohl grenzenlos sein. Straße, Mädchen, schön.
def encode(text): return [vocab[c] for c in text if c in vocab]  # comment
for (int i = 0; i < n; ++i) { sum += x[i] * y[i]; }
Hello, world!  Two  spaces,	a tab, and a line break
then another line.    Trailing spaces here.
"""

ABC = """\
X:1
T:The Morning Walk
M:6/8
L:1/8
K:D
|:A|dfa afd|cec ABc|dfa afd|gec d2:|
|:e|fga gfe|dcB ABc|dfa gec|d3 d2:|
X:2
T:Up the Hill
M:4/4
L:1/8
K:G
|:GABc dedB|dedB dedB|c2ec B2dB|c2A2 A2BA|
GABc dedB|dedB dedB|c2ec B2dB|A2F2 G4:|
X:3
T:Slow Air for Two Fiddles
M:3/4
L:1/4
Q:1/4=80
K:Am
E|A>B c2|B/A/G/F/ E2|A,2 C>D|E3-|E z E|
"Am"A2 c|"G"B2 d|"F"c>B A|"E7"^G2 E|"Am"A3|]
"""


def corpus_lines():
    lines = (PROSE + ABC).splitlines(keepends=True)
    # Repeat with small variations so that merges have counts to work with.
    out = []
    for k in range(6):
        for ln in lines:
            out.append(ln if k % 2 == 0 else ln.lower())
    return out


# Strings every tokenizer is checked on. {special} and friends are filled per tokenizer.
COMMON_CASES = [
    "",
    "Hello world",
    " Hello world",
    "Hello world ",
    "   leading and trailing   ",
    "multiple    inner     spaces",
    "tab\there\t\tand\ttabs",
    "line one\nline two\r\nline three\n\n\n",
    " \n \t\n",
    "12345 3.14 1,000,000 007",
    "It's I'M we'll THEY'RE you'd she's",
    "café naïve résumé Déjà vu Ångström",
    "e\u0301 combining: A\u030a o\u0308 n\u0303 q\u0323\u0307",
    "日本語のテキストと中文和한국어",
    "emoji 😀 👍🏽 👨‍👩‍👧‍👦 🇫🇷 ❤️",
    "unseen: ǅ ᚠᚢᚦ 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ⅷ ½ \u00a0nbsp\u2003em\u3000ideo",
    "X:1\nT:Tune\nM:6/8\nK:D\n|:A|dfa afd|cec ABc|dfa afd|gec d2:|\n",
    "ABC \"Am\"A2 c|\"G\"B2 d| ^G2 _B =c z4 |]",
    "punctuation!!! ??? ... --- (((brackets))) [x] {y} <z>",
    "C++ code: std::vector<int> v{1, 2, 3}; v.push_back(42);",
    "\u200b zero width \u200d joiner \ufeff bom",
    "The quick brown fox jumps over the lazy dog. It's a sunny day, isn't it?",
]


def cases_for(specials):
    """specials: dict with keys among bos, eos, special, added (strings present in the tokenizer)."""
    out = list(COMMON_CASES)
    if "bos" in specials and "eos" in specials:
        out.append("{bos}Hello{eos} world".format(**specials))
        out.append("{eos}{eos}{bos}".format(**specials))
        out.append("text {eos}\n{bos} more".format(**specials))
    for key in ("special", "added", "lstrip", "word", "rstrip"):
        if key in specials:
            s = specials[key]
            out.append(f"a {s} b")
            out.append(f"a{s}b {s}{s}  {s}")
            out.append(f"{s}")
            out.append(f"word{s} {s}word ({s})")
    if "turn" in specials and "end_turn" in specials:  # a chat turn as templates write it
        t, e = specials["turn"], specials["end_turn"]
        out.append(f"{t}user\nHello there{e}\n{t}model\n")
        out.append(f"{t} user  \n\n Hi {e}{e}\n")
    return out


# ---------------------------------------------------------------------------------------------
GPT2_PAT = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
QWEN2_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
             r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")
LLAMA3_PAT = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"""
              r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")


def component_json(kind, value):
    """The JSON of one pipeline component, as tokenizers itself serializes it."""
    from tokenizers import Tokenizer, models
    tmp = Tokenizer(models.BPE())
    setattr(tmp, kind, value)
    return json.loads(tmp.to_str())[kind]


def with_components(tok, **parts):
    """A copy of `tok` with some components replaced (None removes one)."""
    from tokenizers import Tokenizer
    d = json.loads(tok.to_str())
    for kind, value in parts.items():
        d[kind] = None if value is None else component_json(kind, value)
    return Tokenizer.from_str(json.dumps(d))


def train_byte_level(pattern, normalizer, specials, vocab_size):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, processors, trainers, Regex
    tok = Tokenizer(models.BPE())
    if normalizer is not None:
        tok.normalizer = normalizer
    if pattern is None:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    else:
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus_lines(), trainer)
    return tok


def make_gpt2():
    from tokenizers import AddedToken
    tok = train_byte_level(None, None, ["<|endoftext|>"], 420)
    tok.add_special_tokens([AddedToken("<|mask|>", lstrip=True, normalized=False, special=True)])
    tok.add_tokens([AddedToken("[WORD]", single_word=True, normalized=True, special=False)])
    return tok, "tokenizers BpeTrainer + ByteLevel (GPT-2 layout)", {
        "bos": "<|endoftext|>", "eos": "<|endoftext|>", "lstrip": "<|mask|>", "word": "[WORD]"}


def make_gpt2_prefix():
    # GPT-2 / RoBERTa-like ByteLevel with add_prefix_space, on the gpt2 model.
    from tokenizers import pre_tokenizers
    tok, _, specials = make_gpt2()
    tok = with_components(tok, pre_tokenizer=pre_tokenizers.ByteLevel(add_prefix_space=True))
    return tok, "gpt2 with ByteLevel(add_prefix_space=True)", specials


def make_qwen2():
    from tokenizers import AddedToken, normalizers
    tok = train_byte_level(QWEN2_PAT, normalizers.NFC(),
                           ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], 440)
    tok.add_tokens([AddedToken("<tool_call>", normalized=False, special=False)])
    return tok, "tokenizers BpeTrainer + NFC + Split(Qwen2 regex) + ByteLevel (Qwen2 layout)", {
        "bos": "<|im_start|>", "eos": "<|im_end|>", "special": "<|endoftext|>",
        "added": "<tool_call>"}


def make_llama3_style():
    # Same model as qwen2, with Llama-3's regex (\p{N}{1,3}), ignore_merges and a BOS template.
    from tokenizers import Tokenizer, processors
    tok, _, specials = make_qwen2()
    d = json.loads(tok.to_str())
    d["normalizer"] = None
    d["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = LLAMA3_PAT
    d["model"]["ignore_merges"] = True
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens(["<|begin_of_text|>"])
    bos = tok.token_to_id("<|begin_of_text|>")
    post = processors.Sequence([
        processors.ByteLevel(trim_offsets=False),
        processors.TemplateProcessing(single="<|begin_of_text|> $A",
                                      pair="<|begin_of_text|> $A <|begin_of_text|> $B",
                                      special_tokens=[("<|begin_of_text|>", bos)])])
    tok = with_components(tok, post_processor=post)
    specials = dict(specials, bos="<|begin_of_text|>")
    return tok, "qwen2 model with the Llama-3 regex, ignore_merges, BOS template", specials


def train_spm(workdir):
    import sentencepiece as spm
    prefix = os.path.join(workdir, "spm")
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([ln.rstrip("\n") for ln in corpus_lines() if ln.strip()]),
        model_prefix=prefix, model_type="bpe", vocab_size=520, hard_vocab_limit=False,
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity",
        add_dummy_prefix=True, remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2)
    return prefix + ".model"


def convert_spm(model_file):
    """The sentencepiece model as a tokenizers.Tokenizer, through transformers (several routes,
    since the API moved between versions). Returns (tokenizer, route, errors)."""
    errors = []
    try:
        from transformers import AutoTokenizer
        d = tempfile.mkdtemp()
        with open(model_file, "rb") as src, open(os.path.join(d, "tokenizer.model"), "wb") as dst:
            dst.write(src.read())
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump({"tokenizer_class": "LlamaTokenizer", "bos_token": "<s>", "eos_token": "</s>",
                       "unk_token": "<unk>", "add_bos_token": True, "add_eos_token": False}, f)
        t = AutoTokenizer.from_pretrained(d)
        return t.backend_tokenizer, f"transformers AutoTokenizer ({type(t).__name__}) from tokenizer.model", errors
    except Exception:
        errors.append(traceback.format_exc(limit=3))
    try:
        from transformers import LlamaTokenizerFast
        t = LlamaTokenizerFast(vocab_file=model_file)
        return t.backend_tokenizer, "transformers LlamaTokenizerFast(vocab_file=...)", errors
    except Exception:
        errors.append(traceback.format_exc(limit=3))
    from transformers.convert_slow_tokenizer import LlamaConverter
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=model_file)

    class Slow:  # the attributes LlamaConverter reads from a slow tokenizer
        vocab_file = model_file
        legacy = True
        add_prefix_space = True
        def convert_ids_to_tokens(self, i):
            return sp.id_to_piece(i)
    return LlamaConverter(Slow()).converted(), "transformers convert_slow_tokenizer.LlamaConverter", errors


def spm_base(state={}):
    if "tok" not in state:
        d = tempfile.mkdtemp()
        model_file = train_spm(d)
        tok, route, errors = convert_spm(model_file)
        for e in errors:
            print("[spm conversion route failed]\n" + e, file=sys.stderr)
        state.update(tok=tok, route=route, model_file=model_file)
    return state


def bos_template(tok, eos=False):
    from tokenizers import processors
    bos_id, eos_id = tok.token_to_id("<s>"), tok.token_to_id("</s>")
    single = "<s> $A </s>" if eos else "<s> $A"
    pair = "<s> $A </s> <s> $B </s>" if eos else "<s> $A <s> $B"
    return processors.TemplateProcessing(single=single, pair=pair,
                                         special_tokens=[("<s>", bos_id), ("</s>", eos_id)])


SPM_SPECIALS = {"bos": "<s>", "eos": "</s>"}


def make_llama_hf():
    st = spm_base()
    tok = st["tok"]
    d = json.loads(tok.to_str())
    print("llama_hf pipeline:", json.dumps({k: d.get(k) for k in (
        "normalizer", "pre_tokenizer", "decoder", "post_processor")}, ensure_ascii=False)[:2000])
    print("llama_hf model:", json.dumps({k: v for k, v in d["model"].items()
                                         if k not in ("vocab", "merges")}))
    if d.get("post_processor") is None:
        tok = with_components(tok, post_processor=bos_template(tok))
    return tok, st["route"], SPM_SPECIALS


def make_llama_legacy():
    from tokenizers import normalizers, decoders, AddedToken
    st = spm_base()
    tok = with_components(
        st["tok"],
        normalizer=normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]),
        pre_tokenizer=None,
        decoder=decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                   decoders.Fuse(), decoders.Strip(" ", 1, 0)]),
        post_processor=bos_template(st["tok"]))
    # A normalized added token: matched against the normalized text (Prepend applies to it too).
    tok.add_tokens([AddedToken("<extra>", normalized=True, special=False)])
    return tok, st["route"] + ", legacy Llama-2 layout (Prepend+Replace normalizer)", dict(
        SPM_SPECIALS, added="<extra>")


def make_spm_metaspace():
    from tokenizers import pre_tokenizers, decoders
    st = spm_base()
    tok = with_components(
        st["tok"], normalizer=None,
        pre_tokenizer=pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True),
        decoder=decoders.Sequence([decoders.ByteFallback(),
                                   decoders.Metaspace(replacement="▁", prepend_scheme="always",
                                                      split=True)]),
        post_processor=bos_template(st["tok"], eos=True))
    return tok, st["route"] + ", Metaspace(always, split) pre-tokenizer and decoder", SPM_SPECIALS


def make_char():
    from tokenizers import Tokenizer, models, decoders, processors
    text = "".join(corpus_lines())
    chars = sorted(set(text) - set("ÄÖÜäöüßéèêëàâçîïôûùœæ"))  # drop some, so they are unseen
    vocab = {}
    for t in ["<s>", "</s>", "<unk>", "<pad>"] + chars:
        vocab[t] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    tok.add_special_tokens(["<s>", "</s>", "<unk>", "<pad>"])
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 0)])
    return tok, "character vocabulary: BPE without merges, Fuse decoder", {
        "bos": "<s>", "eos": "</s>", "special": "<pad>"}


def make_gemma():
    # Gemma 2/3 layout (their tokenizer.json as published): no pre-tokenizer, spaces become "▁" in
    # the normalizer and BPE (byte fallback) runs over the whole text; no dummy prefix; BOS
    # template; chat-turn special tokens.
    from tokenizers import normalizers, decoders, processors, AddedToken
    st = spm_base()
    tok = with_components(
        st["tok"],
        normalizer=normalizers.Replace(" ", "▁"),
        pre_tokenizer=None,
        decoder=decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()]))
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True)
                            for t in ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>")])
    bos = tok.token_to_id("<bos>")
    tok = with_components(tok, post_processor=processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A <bos> $B", special_tokens=[("<bos>", bos)]))
    return tok, st["route"] + ", Gemma layout (Replace normalizer, no pre-tokenizer, no dummy prefix)", {
        "bos": "<bos>", "eos": "<eos>", "special": "<end_of_turn>",
        "turn": "<start_of_turn>", "end_turn": "<end_of_turn>"}


def make_phi3():
    # Phi-3 mini: the Llama-2 layout (Prepend + Replace normalizer) with chat tokens that strip the
    # whitespace after them (rstrip), as Phi-3's tokenizer.json marks <|user|>, <|assistant|>, <|end|>.
    from tokenizers import AddedToken
    tok, made_by, _ = make_llama_legacy()
    tok.add_special_tokens([AddedToken("<|endoftext|>", normalized=False, special=True)])
    tok.add_special_tokens([AddedToken(t, rstrip=True, normalized=False, special=True)
                            for t in ("<|assistant|>", "<|end|>", "<|user|>")])
    return tok, made_by + ", Phi-3 chat tokens with rstrip", dict(
        SPM_SPECIALS, special="<|endoftext|>", rstrip="<|end|>", turn="<|user|>", end_turn="<|end|>")


FIXTURES = {
    "gpt2": make_gpt2,
    "gpt2_prefix": make_gpt2_prefix,
    "qwen2": make_qwen2,
    "llama3_style": make_llama3_style,
    "llama_hf": make_llama_hf,
    "llama_legacy": make_llama_legacy,
    "spm_metaspace": make_spm_metaspace,
    "char": make_char,
    "gemma": make_gemma,
    "phi3": make_phi3,
}

# tokenizer_config.json written beside some fixtures, as the published models have them: what
# transformers' AutoTokenizer makes of the pair (BOS/EOS rules on top of tokenizer.json) is recorded
# as "transformers_ids" per case.
TOKENIZER_CONFIGS = {
    "gemma": {"tokenizer_class": "GemmaTokenizer", "add_bos_token": True, "add_eos_token": False,
              "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"},
    "phi3": {"tokenizer_class": "LlamaTokenizer", "add_bos_token": False, "add_eos_token": False,
             "bos_token": "<s>", "eos_token": "<|endoftext|>", "unk_token": "<unk>", "pad_token": "<|endoftext|>",
             "legacy": False},
    "llama3_style": {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<|begin_of_text|>",
                     "eos_token": "<|im_end|>"},
}


# ---------------------------------------------------------------------------------------------
def compact_json(obj):
    """JSON with one line per list item at the top two levels: small, and still diffable."""
    def dump(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = ["{"]
    items = list(obj.items())
    for k, (key, v) in enumerate(items):
        end = "," if k + 1 < len(items) else ""
        if isinstance(v, list) and v and isinstance(v[0], (dict, list)):
            lines.append(f" {dump(key)}:[")
            lines += [f"  {dump(x)}" + ("," if j + 1 < len(v) else "") for j, x in enumerate(v)]
            lines.append(" ]" + end)
        else:
            lines.append(f" {dump(key)}:{dump(v)}{end}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def record(name, tok, made_by, specials, out_dir):
    from tokenizers import Tokenizer
    import tokenizers
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "tokenizer.json")
    tok.save(path, pretty=False)  # compact: the fixtures stay small
    tok = Tokenizer.from_file(path)  # what the file says, nothing else

    cases = []
    for text in cases_for(specials):
        ids = tok.encode(text, add_special_tokens=True).ids
        ids_plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({
            "text": text,
            "ids": ids,
            "ids_no_special": ids_plain,
            "decoded": tok.decode(ids, skip_special_tokens=False),
            "decoded_skip_special": tok.decode(ids, skip_special_tokens=True),
            "decoded_no_special": tok.decode(ids_plain, skip_special_tokens=False),
            "token_texts": [tok.decode([i], skip_special_tokens=False) for i in ids_plain],
        })
    n = tok.get_vocab_size(with_added_tokens=True)
    every = list(range(n))
    emoji = tok.encode("emoji 😀 👍🏽 👨‍👩‍👧‍👦", add_special_tokens=False).ids
    cjk = tok.encode("日本語のテキスト", add_special_tokens=False).ids
    decode_cases = []
    # "all": every id 0..n-1 (a C++ test expands it), to decode every token once, in order and
    # reversed, byte tokens out of their characters included.
    for label, ids, skip in (("all", every, False), ("all", every, True),
                             ("all_reversed", every[::-1], False),
                             (None, emoji[:-1], False), (None, emoji[1:], False),
                             (None, cjk[::-1], False), (None, cjk[:len(cjk) // 2], False)):
        decode_cases.append({"ids": label or ids, "skip_special_tokens": skip,
                             "text": tok.decode(ids, skip_special_tokens=skip)})
    vocab = tok.get_vocab(with_added_tokens=True)
    expected = {
        "name": name,
        "made_by": made_by,
        "versions": {"tokenizers": tokenizers.__version__},
        "vocab_size_with_added": n,
        "max_id": max(vocab.values()),
        "token_to_id": {s: tok.token_to_id(s) for s in sorted(set(specials.values()))},
        "cases": cases,
        "decode_cases": decode_cases,
    }
    try:
        import transformers
        import sentencepiece
        expected["versions"].update(transformers=transformers.__version__,
                                    sentencepiece=sentencepiece.__version__)
    except Exception:
        pass
    if name in TOKENIZER_CONFIGS:
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            json.dump(TOKENIZER_CONFIGS[name], f, indent=1)
        expected["transformers"] = transformers_view(d, cases)
    if name.startswith("llama") or name.startswith("spm") or name == "phi3":
        import sentencepiece as spm
        sp = spm.SentencePieceProcessor(model_file=spm_base()["model_file"])
        expected["sentencepiece_ids_no_special"] = [sp.encode(c["text"]) for c in cases]
    with open(os.path.join(d, "expected.json"), "w", encoding="utf-8") as f:
        f.write(compact_json(expected))
    sizes = sum(os.path.getsize(os.path.join(d, x)) for x in os.listdir(d))
    print(f"{name}: {made_by}; vocab {n}; {len(cases)} cases; {sizes} bytes")


def transformers_view(folder, cases):
    """What AutoTokenizer.from_pretrained(folder) gives for each case (its BOS/EOS rules)."""
    try:
        from transformers import AutoTokenizer
        t = AutoTokenizer.from_pretrained(folder)
        view = {"class": type(t).__name__,
                "ids": [t(c["text"])["input_ids"] for c in cases],
                "bos_token_id": t.bos_token_id, "eos_token_id": t.eos_token_id}
        print(f"  transformers {view['class']}: bos {view['bos_token_id']} eos {view['eos_token_id']}; "
              f"same ids as tokenizers for {sum(a == c['ids'] for a, c in zip(view['ids'], cases))}/{len(cases)}")
        return view
    except Exception:
        err = traceback.format_exc(limit=3)
        print("[transformers view failed]\n" + err, file=sys.stderr)
        return {"error": err}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="folder to write <name>/ into")
    ap.add_argument("--only", nargs="*", help="names to make (default: all)")
    args = ap.parse_args()
    failed = []
    for name, make in FIXTURES.items():
        if args.only and name not in args.only:
            continue
        try:
            tok, made_by, specials = make()
            record(name, tok, made_by, specials, args.out)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    if failed:
        print("FAILED: " + ", ".join(failed), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
