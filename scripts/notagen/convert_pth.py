#!/usr/bin/env python3
"""Convert a NotaGen checkpoint (.pth, torch.save zip format) into a folder duet loads:
config.json (sizes read from the weights) + model.safetensors (NotaGen's tensor names) + duet.json.

Python 3 standard library only: the pickle is read with a restricted unpickler that builds
tensor descriptions, never torch objects, and runs no code from the file.

    python3 scripts/notagen/convert_pth.py weights_notagenx_p_size_16_p_length_1024_p_layers_20_h_size_1280.pth \
        out/notagen-x [--heads N] [--no-stream] [--key model]

What it keeps: every tensor under the state dict (checkpoint['model'] as NotaGen saves it, or
the top-level dict when it is itself a state dict), in its stored dtype; the causal-mask
buffers of old transformers versions (".attn.bias", ".attn.masked_bias") are dropped, and so is
"char_level_decoder.base.lm_head.weight" when it equals the tied character embedding.
Sizes: hidden, patch size, patch context, layers of both decoders and the MLP width come from
the tensors' shapes; the head count is not in the weights (NotaGen uses hidden / 64: --heads).
"""
import argparse
import collections
import json
import os
import pickle
import re
import struct
import sys
import zipfile

DTYPES = {  # torch storage class -> (safetensors dtype, bytes per element)
    "DoubleStorage": ("F64", 8), "FloatStorage": ("F32", 4), "HalfStorage": ("F16", 2),
    "BFloat16Storage": ("BF16", 2), "LongStorage": ("I64", 8), "IntStorage": ("I32", 4),
    "ShortStorage": ("I16", 2), "CharStorage": ("I8", 1), "ByteStorage": ("U8", 1),
    "BoolStorage": ("BOOL", 1),
}
DROP_RE = re.compile(r"\.attn\.(bias|masked_bias)$")
PATCH = "patch_level_decoder."
CHAR = "char_level_decoder.base."


class ConvertError(Exception):
    pass


class StorageType:
    def __init__(self, name):
        self.name = name


class Storage:
    def __init__(self, stype, key, numel):
        if stype.name not in DTYPES:
            raise ConvertError("tensor storage of type %s is not supported" % stype.name)
        self.dtype, self.esize = DTYPES[stype.name]
        self.key, self.numel = key, numel


class Tensor:
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    @property
    def numel(self):
        n = 1
        for s in self.size:
            n *= s
        return n

    def contiguous(self):
        expect, st = 1, []
        for s in reversed(self.size):
            st.append(expect)
            expect *= s
        return all(a == b or s == 1 for a, b, s in zip(self.stride, reversed(st), self.size))


def rebuild_tensor(storage, offset, size, stride, *rest):
    return Tensor(storage, offset, size, stride)


def rebuild_parameter(data, *rest):
    return data


class Opaque:
    """Anything else in the checkpoint (optimizer classes, numpy scalars, ...): kept inert."""
    def __init__(self, *a, **k):
        pass

    def __setstate__(self, state):
        pass


class Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return rebuild_parameter
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch" and name.endswith("Storage"):
            return StorageType(name)
        if module in ("builtins", "__builtin__") and name in ("set", "frozenset", "slice", "complex"):
            return getattr(__builtins__, name) if hasattr(__builtins__, name) else __builtins__[name]
        return type(name, (Opaque,), {})

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise ConvertError("unexpected persistent id %r in the checkpoint" % (pid,))
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, StorageType):
            raise ConvertError("storage type %r is not a torch storage class" % (stype,))
        return Storage(stype, key, numel)


def load_pth(path):
    """-> (zip file, archive prefix, unpickled object)."""
    if not zipfile.is_zipfile(path):
        raise ConvertError("%s is not a torch zip checkpoint (torch.save of torch >= 1.6); "
                           "re-save it with torch.save(torch.load(f), f) on a machine with torch" % path)
    zf = zipfile.ZipFile(path)
    pkls = [n for n in zf.namelist() if n.endswith("/data.pkl")]
    if len(pkls) != 1:
        raise ConvertError("%s holds %d data.pkl records, expected 1" % (path, len(pkls)))
    prefix = pkls[0][:-len("data.pkl")]
    bo = prefix + "byteorder"
    if bo in zf.namelist() and zf.read(bo).strip() not in (b"little",):
        raise ConvertError("%s was saved big-endian; only little-endian checkpoints are read" % path)
    with zf.open(pkls[0]) as fh:
        obj = Unpickler(fh).load()
    return zf, prefix, obj


def find_state_dict(obj, key):
    def is_sd(d):
        return isinstance(d, dict) and d and all(isinstance(v, Tensor) for v in d.values())
    if key:
        if not isinstance(obj, dict) or key not in obj:
            raise ConvertError("the checkpoint has no entry %r (top-level keys: %s)" % (
                key, list(obj.keys()) if isinstance(obj, dict) else type(obj).__name__))
        obj = obj[key]
    elif isinstance(obj, dict) and "model" in obj:
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ConvertError("the checkpoint's state dict is a %s, not a dict" % type(obj).__name__)
    tensors = {k: v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise ConvertError("no tensors found in the checkpoint's state dict")
    return tensors


def tensor_bytes(zf, prefix, t):
    raw = zf.read(prefix + "data/" + t.storage.key)
    es = t.storage.esize
    if len(raw) < t.storage.numel * es:
        raise ConvertError("storage %s is truncated" % t.storage.key)
    if t.contiguous():
        a = t.offset * es
        return raw[a:a + t.numel * es]
    out = bytearray()

    def walk(dim, base):
        if dim == len(t.size):
            out.extend(raw[base * es:(base + 1) * es])
            return
        for i in range(t.size[dim]):
            walk(dim + 1, base + i * t.stride[dim])
    walk(0, t.offset)
    return bytes(out)


def layer_count(names, prefix):
    idx = {int(m.group(1)) for n in names for m in [re.match(re.escape(prefix) + r"h\.(\d+)\.", n)] if m}
    if idx != set(range(len(idx))):
        raise ConvertError("layers under %s are not numbered 0..n-1: %s" % (prefix, sorted(idx)))
    return len(idx)


def need(tensors, name, rank):
    if name not in tensors:
        raise ConvertError("tensor %s is missing: is this a NotaGen checkpoint?" % name)
    t = tensors[name]
    if len(t.size) != rank:
        raise ConvertError("tensor %s has shape %s, expected %d dimensions" % (name, list(t.size), rank))
    return t.size


def model_config(tensors, heads, stream):
    hidden, pin = need(tensors, PATCH + "patch_embedding.weight", 2)
    if pin % 128:
        raise ConvertError("patch_embedding takes %d inputs, not a multiple of 128 characters" % pin)
    patch_size = pin // 128
    patch_length, h2 = need(tensors, PATCH + "base.wpe.weight", 2)
    vocab, h3 = need(tensors, CHAR + "transformer.wte.weight", 2)
    char_positions, h4 = need(tensors, CHAR + "transformer.wpe.weight", 2)
    _, inter = need(tensors, PATCH + "base.h.0.mlp.c_fc.weight", 2)
    if len({hidden, h2, h3, h4}) != 1:
        raise ConvertError("hidden sizes disagree: patch embedding %d, patch positions %d, "
                           "char embedding %d, char positions %d" % (hidden, h2, h3, h4))
    if char_positions < patch_size:
        raise ConvertError("the char decoder has %d positions, fewer than the patch size %d" % (
            char_positions, patch_size))
    heads = heads or max(1, hidden // 64)
    if hidden % heads:
        raise ConvertError("hidden size %d is not divisible by %d heads" % (hidden, heads))
    names = list(tensors)
    return {
        "model_type": "notagen",
        "architectures": ["NotaGenLMHeadModel"],
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": inter,
        "patch_size": patch_size,
        "patch_length": patch_length,
        "patch_num_layers": layer_count(names, PATCH + "base."),
        "char_num_layers": layer_count(names, CHAR + "transformer."),
        "char_positions": char_positions,
        "char_vocab_size": vocab,
        "layer_norm_epsilon": 1e-5,
        "activation_function": "gelu_new",
        "stream_markers": stream,
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 0,
    }


def write_safetensors(path, zf, prefix, tensors):
    names = sorted(tensors)
    header, off = {"__metadata__": {"format": "pt", "source": "NotaGen .pth via convert_pth.py"}}, 0
    for n in names:
        t = tensors[n]
        nbytes = t.numel * t.storage.esize
        header[n] = {"dtype": t.storage.dtype, "shape": list(t.size), "data_offsets": [off, off + nbytes]}
        off += nbytes
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)))
        fh.write(hb)
        for n in names:
            fh.write(tensor_bytes(zf, prefix, tensors[n]))
    os.replace(tmp, path)


def duet_json(stream):
    """What duet-edge needs to prompt and sample: NotaGen-X's period-composer-instrumentation form
    and NotaGen's sampling (softmax, top-k 9, top-p 0.9, then temperature 1.2 on the kept tokens)."""
    dj = {"family": "notagen", "sampling": {"top_k": 9, "top_p": 0.9, "temperature": 1.2},
          "sampling_order": "notagen", "max_chars": 102400}
    if stream:
        dj.update({"prompt_form": "period-composer-instrumentation",
                   "prompt_template": "%{period}\n%{composer}\n%{instrumentation}\n",
                   "defaults": {"period": "Classical", "composer": "Beethoven, Ludwig van",
                                "instrumentation": "Keyboard"}})
    else:
        dj.update({"prompt_form": "raw", "prompt_template": ""})
    return dj


def read_prompts(path):
    """NotaGen's gradio/prompts.txt: one "period_composer_instrumentation" per line."""
    out = []
    for line in open(path, encoding="utf-8"):
        parts = line.strip().split("_")
        if len(parts) == 3 and all(parts):
            out.append(parts)
        elif line.strip():
            raise ConvertError("%s: line %r is not period_composer_instrumentation" % (path, line.strip()))
    return out


def convert(src, dst, heads=None, stream=True, key=None, extra_duet=None):
    zf, prefix, obj = load_pth(src)
    tensors = find_state_dict(obj, key)
    dropped = [n for n in tensors if DROP_RE.search(n)]
    for n in dropped:
        del tensors[n]
    lm, wte = CHAR + "lm_head.weight", CHAR + "transformer.wte.weight"
    if lm in tensors and wte in tensors and tensors[lm].size == tensors[wte].size and \
            tensor_bytes(zf, prefix, tensors[lm]) == tensor_bytes(zf, prefix, tensors[wte]):
        del tensors[lm]
        dropped.append(lm + " (tied)")
    cfg = model_config(tensors, heads, stream)
    dts = {t.storage.dtype for t in tensors.values() if t.storage.dtype in ("F32", "F16", "BF16", "F64")}
    cfg["torch_dtype"] = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64"}[
        sorted(dts)[0]] if len(dts) == 1 else "mixed"
    os.makedirs(dst, exist_ok=True)
    write_safetensors(os.path.join(dst, "model.safetensors"), zf, prefix, tensors)
    with open(os.path.join(dst, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=1)
    dj = duet_json(stream)
    if extra_duet:
        dj.update(extra_duet)
    with open(os.path.join(dst, "duet.json"), "w") as fh:
        json.dump(dj, fh, indent=1)
    return cfg, dropped


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("pth", help="NotaGen checkpoint (.pth)")
    ap.add_argument("out", help="folder to write (config.json, model.safetensors, duet.json)")
    ap.add_argument("--heads", type=int, default=None, help="attention heads (default hidden / 64, as NotaGen)")
    ap.add_argument("--no-stream", action="store_true",
                    help="the checkpoint was trained without [r:i/j] line markers (NotaGen's are with)")
    ap.add_argument("--key", default=None, help="entry holding the state dict (default: 'model' if present)")
    ap.add_argument("--prompts", help="NotaGen's gradio/prompts.txt: the period-composer-instrumentation "
                                      "combinations the checkpoint knows (duet-edge warns about others)")
    args = ap.parse_args()
    try:
        extra = {"prompts": read_prompts(args.prompts)} if args.prompts else None
        cfg, dropped = convert(args.pth, args.out, args.heads, not args.no_stream, args.key, extra)
    except (ConvertError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        sys.exit("convert_pth: %s" % e)
    print("wrote %s: hidden %d, %d+%d layers, patch %d x %d, heads %d; dropped %s" % (
        args.out, cfg["hidden_size"], cfg["patch_num_layers"], cfg["char_num_layers"],
        cfg["patch_length"], cfg["patch_size"], cfg["num_attention_heads"], dropped or "nothing"))


if __name__ == "__main__":
    main()
