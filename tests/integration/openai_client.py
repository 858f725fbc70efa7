#!/usr/bin/env python3
"""An OpenAI-style client with nothing but the standard library, driving `duet-edge serve` as an
application would: list models, complete with and without streaming (server-sent events, [DONE],
usage), stop strings, seeds, errors as OpenAI's error objects, two streams at once, and a stream
the client drops half way (its cloud session must close at once).

    python3 openai_client.py --base http://127.0.0.1:8080 [--key KEY] CHECK...

CHECK: api, concurrent, cancel, auth, music. Prints one line per check; exits 1 with the reason
on the first failure.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


class Fail(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Fail(what)


class Client:
    """The calls an OpenAI SDK makes, with urllib."""

    def __init__(self, base, key=None):
        self.base = base.rstrip("/")
        self.key = key

    def _req(self, method, path, body=None, key=None):
        headers = {"Content-Type": "application/json"}
        k = self.key if key is None else key
        if k:
            headers["Authorization"] = "Bearer " + k
        data = None if body is None else json.dumps(body).encode()
        return urllib.request.Request(self.base + path, data=data, headers=headers, method=method)

    def call(self, method, path, body=None, key=None):
        """(status, parsed JSON)"""
        try:
            with urllib.request.urlopen(self._req(method, path, body, key), timeout=120) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def stream(self, path, body, on_event=None):
        """Yields the parsed data events of a server-sent event stream, up to [DONE]."""
        r = urllib.request.urlopen(self._req("POST", path, dict(body, stream=True)), timeout=120)
        ctype = r.headers.get("Content-Type", "")
        expect(ctype.startswith("text/event-stream"), f"stream Content-Type is {ctype!r}")
        events, done = [], False
        for raw in r:
            line = raw.decode("utf-8").rstrip("\n")
            if not line:
                continue
            expect(line.startswith("data: "), f"not an SSE data line: {line!r}")
            data = line[len("data: "):]
            if data == "[DONE]":
                done = True
                break
            ev = json.loads(data)
            events.append(ev)
            if on_event:
                on_event(ev)
        r.close()
        expect(done, "the stream ended without data: [DONE]")
        return events


def text_of(events, chat):
    out = ""
    for ev in events:
        expect("error" not in ev, f"error event in the stream: {ev}")
        for c in ev.get("choices", []):
            out += (c.get("delta", {}).get("content") or "") if chat else c.get("text", "")
    return out


def check_api(c, model_hint):
    st, models = c.call("GET", "/v1/models")
    expect(st == 200 and models["object"] == "list" and len(models["data"]) == 1, f"/v1/models: {st} {models}")
    model = models["data"][0]["id"]
    expect(model_hint in model, f"model id {model!r}")

    # whole reply, greedy: the same text twice, and the same as the stream
    body = {"model": model, "prompt": "S:nottingham-reel\nM:4/4\nL:1/8\nK:G\n", "max_tokens": 40, "temperature": 0}
    st, a = c.call("POST", "/v1/completions", body)
    expect(st == 200, f"/v1/completions: {st} {a}")
    expect(a["object"] == "text_completion" and a["id"].startswith("cmpl-"), f"reply shape: {a}")
    ch = a["choices"][0]
    expect(ch["finish_reason"] in ("stop", "length") and ch["text"], f"choice: {ch}")
    u = a["usage"]
    expect(u["prompt_tokens"] > 5 and 0 < u["completion_tokens"] <= 40 and
           u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"], f"usage: {u}")
    st, b = c.call("POST", "/v1/completions", body)
    expect(b["choices"][0]["text"] == ch["text"], "greedy is not deterministic")

    events = c.stream("/v1/completions", dict(body, stream_options={"include_usage": True}))
    expect(text_of(events, False) == ch["text"], "the stream's text differs from the whole reply's")
    expect(events[-1]["choices"] == [] and events[-1]["usage"] == u, f"usage chunk: {events[-1]}")
    finals = [e for e in events if e["choices"] and e["choices"][0]["finish_reason"]]
    expect(len(finals) == 1 and finals[0]["choices"][0]["finish_reason"] == ch["finish_reason"], "finish chunk")
    expect(all(e["id"] == events[0]["id"] for e in events), "chunk ids differ")
    expect(len(events) > 5, f"only {len(events)} events: not streamed token by token")

    # stop strings: the text ends before the first one
    first_bar = ch["text"].find("|")
    if first_bar > 0:
        st, s = c.call("POST", "/v1/completions", dict(body, stop=["|"]))
        expect(s["choices"][0]["text"] == ch["text"][:first_bar] and s["choices"][0]["finish_reason"] == "stop",
               f"stop '|': {s['choices'][0]}")

    # sampled with a seed: reproducible; different seeds differ (on 40 tokens, practically always)
    sb = dict(body, temperature=1.0, seed=11)
    t1 = c.call("POST", "/v1/completions", sb)[1]["choices"][0]["text"]
    t2 = c.call("POST", "/v1/completions", sb)[1]["choices"][0]["text"]
    t3 = c.call("POST", "/v1/completions", dict(sb, seed=12))[1]["choices"][0]["text"]
    expect(t1 == t2, "the same seed gave different text")
    expect(t1 != t3, "different seeds gave the same text")

    # errors: OpenAI's error object, the right status
    for path, bad, status, param in [
        ("/v1/completions", dict(body, n=2), 400, "n"),
        ("/v1/completions", dict(body, temperature=5), 400, "temperature"),
        ("/v1/completions", dict(body, prompt=[999999]), 400, "prompt"),
        ("/v1/completions", dict(body, prompt="x" * 5000), 400, None),
        ("/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": "hi"}]}, 400, "messages"),
        ("/v1/nowhere", {}, 404, None),
    ]:
        st, e = c.call("POST", path, bad)
        expect(st == status and isinstance(e, dict) and "error" in e, f"{path} {bad}: {st} {e}")
        err = e["error"]
        expect(set(err) >= {"message", "type", "param", "code"} and err["message"], f"error object: {err}")
        if param:
            expect(err["param"] == param, f"param {err['param']!r}, wanted {param!r}")
    # a model this server does not serve is refused, as OpenAI does
    st, e = c.call("POST", "/v1/completions", dict(body, model="gpt-4o"))
    expect(st == 404 and e["error"]["code"] == "model_not_found" and e["error"]["param"] == "model",
           f"wrong model: {st} {e}")
    # llama-server's token routes round-trip with the edge's tokenizer
    st, t = c.call("POST", "/tokenize", {"content": body["prompt"]})
    expect(st == 200 and t["tokens"] and all(isinstance(i, int) for i in t["tokens"]), f"/tokenize: {st} {t}")
    st, d = c.call("POST", "/detokenize", {"tokens": t["tokens"]})
    expect(st == 200 and d["content"] == body["prompt"], f"/detokenize: {st} {d}")
    st, d = c.call("POST", "/detokenize", {"tokens": [10 ** 9]})
    expect(st == 400 and d["error"]["param"] == "tokens", f"/detokenize out of vocabulary: {st} {d}")
    st, p = c.call("GET", "/props")
    expect(st == 200 and p["default_generation_settings"]["temperature"] > 0 and p["total_slots"] >= 1,
           f"/props: {st} {p}")
    st, e = c.call("POST", "/v1/completions", dict(body, prompt="x" * 5000))
    expect(e["error"]["code"] == "context_length_exceeded", f"long prompt: {e}")
    st, e = c.call("POST", "/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    expect("chat_template" in e["error"]["message"], f"no chat template: {e}")
    print(f"api: ok ({u['completion_tokens']} tokens, finish {ch['finish_reason']})")


def check_concurrent(c):
    """Two streams at once: both complete, and they overlap in time (not one after the other)."""
    body = {"prompt": "S:oneills-jig\nM:6/8\nL:1/8\nK:D\n", "max_tokens": 120, "temperature": 0.8, "seed": 3}
    spans, errors = {}, []

    def run(i):
        try:
            times = []
            events = c.stream("/v1/completions", dict(body, seed=i), lambda ev: times.append(time.monotonic()))
            text_of(events, False)
            spans[i] = (times[0], times[-1], len(events))
        except Exception as e:  # noqa: BLE001 -- reported below
            errors.append(f"stream {i}: {e!r}")

    threads = [threading.Thread(target=run, args=(i,)) for i in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    expect(not errors, "; ".join(errors))
    expect(len(spans) == 2, "a stream did not finish")
    (a0, a1, na), (b0, b1, nb) = spans[1], spans[2]
    expect(a0 < b1 and b0 < a1, f"the two streams did not overlap: {spans}")
    st, h = c.call("GET", "/health")
    expect(h["active_requests"] == 0 and h["cloud_connections"] >= 2, f"/health after two streams: {h}")
    print(f"concurrent: ok ({na} and {nb} events, overlapping; {h['cloud_connections']} cloud connections)")


def check_cancel(c):
    """A client that drops its stream half way: the generation ends at once (seen in /health)."""
    u = urllib.parse.urlsplit(c.base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if c.key:
        headers["Authorization"] = "Bearer " + c.key
    body = {"prompt": "S:nottingham-reel\nM:4/4\nL:1/8\nK:G\n", "max_tokens": 100000, "temperature": 1.0,
            "stream": True}
    # the budget is far beyond the tune: without the cancel it would run to the context's end
    conn.request("POST", "/v1/completions", json.dumps(body), headers)
    r = conn.getresponse()
    expect(r.status == 200, f"stream status {r.status}")
    got = 0
    while got < 3:
        line = r.fp.readline()
        if line.startswith(b"data: {"):
            got += 1
    st, h = c.call("GET", "/health")
    expect(h["active_requests"] == 1, f"/health while streaming: {h}")
    conn.sock.shutdown(2)
    conn.close()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        st, h = c.call("GET", "/health")
        if h["active_requests"] == 0:
            break
        time.sleep(0.02)
    gone_ms = (time.monotonic() - t0) * 1000
    expect(h["active_requests"] == 0, f"the dropped stream still generates after 10 s: {h}")
    print(f"cancel: ok (generation ended {gone_ms:.0f} ms after the client closed)")


def check_auth(c):
    st, e = c.call("GET", "/v1/models", key="")
    expect(st == 401 and e["error"]["type"] == "authentication_error", f"no key: {st} {e}")
    st, e = c.call("GET", "/v1/models", key="wrong")
    expect(st == 401 and e["error"]["code"] == "invalid_api_key", f"wrong key: {st} {e}")
    st, e = c.call("POST", "/v1/completions", {"prompt": "K:G\n", "max_tokens": 4}, key="wrong")
    expect(st == 401, f"completion with a wrong key: {st}")
    st, m = c.call("GET", "/v1/models")
    expect(st == 200, f"right key: {st} {m}")
    st, a = c.call("POST", "/v1/completions", {"prompt": "K:G\n", "max_tokens": 4, "temperature": 0})
    expect(st == 200 and a["usage"]["completion_tokens"] >= 1, f"completion with the key: {st} {a}")
    print("auth: ok")


def check_music(c):
    st, m = c.call("GET", "/api/music")
    expect(st == 200 and "oneills-jig" in m["styles"] and m["units"], f"/api/music: {st} {m}")
    events = c.stream("/api/music", {"style": "oneills-jig", "meter": "6/8", "unit": "1/8", "key": "D", "seed": 4,
                                     "temperature": 0.8, "max_tokens": 60})
    tune = text_of(events, False)
    # the header as duet-edge generate writes it (title, tempo, seed), then the model's prompt
    expect(tune.startswith("X:1\nT:") and "seed 4" in tune and "\nS:oneills-jig\nM:6/8\nL:1/8\nK:D\n" in tune
           and len(tune) > 40, f"tune: {tune!r}")
    # duet's stop reason beside finish_reason on the last chunk
    last = [e for e in events if e.get("choices") and e["choices"][0].get("finish_reason")]
    expect(len(last) == 1 and last[0].get("stop_reason") in ("eos", "ending_rule", "max_new_tokens"),
           f"stop_reason: {last}")
    st, e = c.call("POST", "/api/music", {"style": "polka-from-mars"})
    expect(st == 400 and "oneills-jig" in e["error"]["message"], f"unknown style: {st} {e}")
    st, e = c.call("POST", "/api/music", {"style": "oneills-jig", "meter": "7/x"})
    expect(st == 400 and "meter '7/x'" in e["error"]["message"], f"bad meter: {st} {e}")
    st, e = c.call("POST", "/api/music", {"style": "oneills-jig", "constraint": "yes"})
    expect(st == 400 and "constraint" in e["error"]["message"], f"bad constraint flag: {st} {e}")
    # bar-true by default, as duet-edge generate: every checked bar right (scripts/abc/evaluate.py --bars)
    events = c.stream("/api/music", {"style": "oneills-reel", "seed": 11, "temperature": 1.0, "max_tokens": 300})
    tune = text_of(events, False)
    evaluate = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "abc", "evaluate.py")
    with tempfile.NamedTemporaryFile("w", suffix=".abc", delete=False) as fh:
        fh.write(tune if tune.endswith("\n") else tune + "\n")
    try:
        bars = json.loads(subprocess.run([sys.executable, evaluate, "--bars", fh.name], capture_output=True,
                                         text=True, check=True).stdout)
    finally:
        os.unlink(fh.name)
    expect(len(bars) == 1 and bars[0]["checked"] >= 4 and bars[0]["good"] == bars[0]["checked"],
           f"constrained tune's bars: {bars} {tune!r}")
    with urllib.request.urlopen(c.base + "/soundfont/acoustic_grand_piano-mp3/Db4.mp3", timeout=30) as r:
        head = r.read(12)
    expect(head[:4] == b"RIFF" and head[8:12] == b"WAVE", "note sample is not a WAV")
    print("music: ok")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--key")
    ap.add_argument("--model-hint", default="")
    ap.add_argument("checks", nargs="+", choices=["api", "concurrent", "cancel", "auth", "music"])
    a = ap.parse_args()
    c = Client(a.base, a.key)
    try:
        for name in a.checks:
            {"api": lambda: check_api(c, a.model_hint), "concurrent": lambda: check_concurrent(c),
             "cancel": lambda: check_cancel(c), "auth": lambda: check_auth(c), "music": lambda: check_music(c)}[name]()
    except Fail as e:
        print(f"FAILED: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
