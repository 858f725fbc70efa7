#!/usr/bin/env python3
"""NotaGen's patch form of ABC text (Python 3 standard library only).

A piece is a list of patches of PATCH_SIZE characters (code points < 128):
  * a BOS patch (15 x chr(1) + chr(2)) first, an EOS patch (chr(1) + 15 x chr(2)) last;
  * each metadata line (with its "\n") cut into patches;
  * each body line cut into bars, each bar cut into patches;
  * a line or bar whose length is not a multiple of PATCH_SIZE gets chr(2) (EOS) after it;
    a short last patch is padded with chr(0).
Bars: a bar is a bar line (|, ||, |:, :|, ::, [|, |]; consecutive ones count as one) plus what
follows it up to the next bar line; text before a line's first bar line is a bar of its own;
the line's last piece (normally its closing bar line and "\n") joins the bar before it, unless
it holds a voice field. This is NotaGen's rule, except at two bar lines in a row (":||:"), where
NotaGen's pairing goes out of step (and may drop the rest of the piece); here they stay together
as one bar line.
Stream models ("[r:i/j]" markers) put "[r:<line>/<lines after>]" before every body line.

duet's C++ edge (edge/notagen/) implements the same rules; tests/fixtures/notagen holds ids made
by this file that the C++ side must reproduce.
"""
import re

PATCH_SIZE = 16
PAD, BOS, EOS = 0, 1, 2
BAR_LINES = ["|:", "::", ":|", "[|", "||", "|]", "|"]
_BAR_RE = re.compile("(" + "|".join(map(re.escape, BAR_LINES)) + ")")
_STREAM_RE = re.compile(r"^\[r:[^\]]*\]")


def bos_patch(p=PATCH_SIZE):
    return chr(BOS) * (p - 1) + chr(EOS)


def eos_patch(p=PATCH_SIZE):
    return chr(BOS) + chr(EOS) * (p - 1)


def split_bars(line):
    """One body line (with its "\n") -> its bars; "".join(bars) == line."""
    groups = []   # [is_bar_line, text]
    for part in _BAR_RE.split(line):
        if not part:
            continue
        is_bar = part in BAR_LINES
        if groups and is_bar and groups[-1][0]:
            groups[-1][1] += part
        else:
            groups.append([is_bar, part])
    if not groups:
        return []
    bars, i = [], 0
    if not groups[0][0]:
        bars.append(groups[0][1])
        i = 1
    while i < len(groups):
        text = groups[i][1]
        if i + 1 < len(groups) and not groups[i + 1][0]:
            text += groups[i + 1][1]
            i += 2
        else:
            i += 1
        bars.append(text)
    if len(groups) > 1 and len(bars) > 1 and "V" not in bars[-1]:
        bars[-2] += bars[-1]
        bars.pop()
    return bars


def cut(text, p=PATCH_SIZE, open_end=False):
    """A line or bar -> patches; EOS after it unless its length is a multiple of p or open_end."""
    if not open_end and len(text) % p != 0:
        text += chr(EOS)
    return [text[i:i + p] for i in range(0, len(text), p)]


def split_lines(text):
    """Lines with their "\n" (the last one may lack it); empty lines dropped."""
    out = []
    for ln in text.split("\n"):
        if ln:
            out.append(ln + "\n")
    if out and not text.endswith("\n"):
        out[-1] = out[-1][:-1]
    return out


def add_stream_markers(body_lines):
    n = len(body_lines)
    return ["[r:%d/%d]%s" % (i, n - i - 1, ln) for i, ln in enumerate(body_lines)]


def strip_stream_markers(text):
    return "".join(_STREAM_RE.sub("", ln) for ln in text.splitlines(True))


def encode_train(meta_lines, body_lines, p=PATCH_SIZE):
    """Training form: BOS, metadata patches, body patches, EOS (list of strings)."""
    patches = [bos_patch(p)]
    for ln in meta_lines:
        patches += cut(ln, p)
    for ln in body_lines:
        for bar in split_bars(ln):
            patches += cut(bar, p)
    patches.append(eos_patch(p))
    return patches


def encode_prompt(meta_lines, body_lines=(), p=PATCH_SIZE):
    """Generation form: BOS, metadata, body; the body's last bar stays open (no EOS), so its
    last patch may be partial: that part is the character decoder's forced prefix."""
    patches = [bos_patch(p)]
    for ln in meta_lines:
        patches += cut(ln, p)
    bars = [b for ln in body_lines for b in split_bars(ln)]
    for k, bar in enumerate(bars):
        patches += cut(bar, p, open_end=(k == len(bars) - 1))
    return patches


def patch_ids(patch, p=PATCH_SIZE):
    ids = [ord(c) for c in patch]
    if any(i >= 128 for i in ids):
        raise ValueError("character outside ASCII in %r" % patch)
    return ids + [PAD] * (p - len(ids))


def patch_text(ids):
    """The text of one generated patch: its characters up to the first EOS."""
    out = []
    for i in ids:
        if i == EOS:
            break
        out.append(chr(i))
    return "".join(out)


def clean_patch(ids):
    """What goes back into the patch level: everything after the first EOS becomes PAD."""
    out, ended = [], False
    for i in ids:
        out.append(PAD if ended else i)
        ended = ended or i == EOS
    return out


def is_eos_patch(ids):
    return len(ids) >= 2 and ids[0] == BOS and ids[1] == EOS


if __name__ == "__main__":
    import json, sys
    for ln in sys.stdin:
        print(json.dumps(split_bars(ln)))
