"""Per-tune musical figures for evaluate.py and style_stats.py (Python 3 stdlib).

  tune_figures(meter, unit, key, body) -> dict:
    bars_all, bars_all_right   the pickup-aware bar check over every bar the parser reads: a bar is
                               right when it is as long as the meter, or shorter next to a bar line
                               other than a plain "|" (or at the tune's start or end: a pickup or the
                               bar completing one); never longer
    n_bars, distinct_bars      bars with notes, and how many differ musically (same pitches and
                               lengths = equal, however written)
    top_bar_share              the share of the tune's bars taken by its most frequent bar
    top_bar_count, top_cell_count   how often its most frequent bar / 2-bar cell comes
    ends_on_tonic              the last note (or a chord's lowest) has the key's tonic pitch class
    bar_lines                  bar lines written (| || |] |: :| :: [| each once, as style_stats counts)
    bar_keys                   the bars as hashable music (for CorpusIndex)
  CorpusIndex(bar_key_lists).longest_shared(bar_keys): the most bars in a row a tune shares with any
  one corpus tune (counted up to 16).
"""
import collections
import re

from abc_bars import BarChecker

BAR_LINE = re.compile(r"::|:\||\|:|\|\]|\|\||\[\||\|")
SKIP_REASONS = {"unparsed", "meter change", "unit change", "no meter", "Z rest", "+chord+"}


def bar_lines(body):
    return len(BAR_LINE.findall(body))


def tune_figures(meter, unit, key, body):
    bc = BarChecker(meter, unit, key)
    try:
        bc.check(body)
    except Exception:                 # garbage the parser cannot follow
        return {"bars_all": 0, "bars_all_right": 0, "n_bars": 0, "distinct_bars": 0, "top_bar_share": 0.0,
                "top_bar_count": 0, "top_cell_count": 0, "ends_on_tonic": False, "bar_lines": bar_lines(body),
                "bar_keys": []}
    info = bc.info
    checked = right = 0
    for b in info:
        if b["reasons"] & SKIP_REASONS or b["meter"] is None:
            continue
        checked += 1
        boundary = b["start"] not in ("|",) or b["end"] not in ("|",)
        right += b["dur"] == b["meter"] or (b["dur"] < b["meter"] and boundary)
    keys = [b["events"] for b in info if b["events"]]
    counts = collections.Counter(keys)
    cells = collections.Counter(zip(keys, keys[1:]))
    last = None
    for b in reversed(info):
        notes = [p for p, _ in b["events"] if p != "z"]
        if notes:
            last = notes[-1]
            break
    if isinstance(last, tuple):
        last = last[0]
    tonic = last is not None and bc.tonic is not None and last % 12 == bc.tonic
    return {"bars_all": checked, "bars_all_right": right, "n_bars": len(keys), "distinct_bars": len(counts),
            "top_bar_share": max(counts.values()) / len(keys) if keys else 0.0,
            "top_bar_count": max(counts.values()) if keys else 0,
            "top_cell_count": max(cells.values()) if cells else 0,
            "ends_on_tonic": tonic, "bar_lines": bar_lines(body), "bar_keys": keys}


class CorpusIndex:
    """Runs of consecutive bars of the corpus tunes, to find the longest passage a tune shares."""

    def __init__(self, bar_key_lists):
        self.tunes = [k for k in bar_key_lists if k]
        self.grams = {}

    def _grams(self, k):
        if k not in self.grams:
            self.grams[k] = {hash(tuple(t[i:i + k])) for t in self.tunes for i in range(len(t) - k + 1)}
        return self.grams[k]

    def longest_shared(self, keys, cap=16):
        """Bars in a row (at most cap) that keys shares with one corpus tune."""
        best = 0
        while best < min(cap, len(keys)):
            k = best + 1
            grams = self._grams(k)
            if not any(hash(tuple(keys[i:i + k])) in grams for i in range(len(keys) - k + 1)):
                break
            best = k
        return best
