#!/usr/bin/env python3
"""Drives the music page of `duet-edge serve` in headless Chromium (Debian's `chromium`), as a
musician would: open the page, choose a style, meter, unit, key, seed and temperature, press
"Write a tune", wait for the score, check that it holds notes and that the downloads are ready,
and save a screenshot. Talks to Chromium over the DevTools protocol on a pipe (fds 3 and 4):
standard library only.

    python3 music_page_check.py --url http://127.0.0.1:8080/ --screenshot out.png [--timeout 120]

Exits 1 with the reason (page status, console errors, requests that left the machine) on failure.
"""
import argparse
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse


class Cdp:
    def __init__(self, chrome, profile):
        r_ours, w_chrome = os.pipe()  # chromium writes on its fd 4
        r_chrome, w_ours = os.pipe()  # chromium reads on its fd 3

        def fds():
            # through fresh numbers first: the pipe's own fds may be 3 or 4
            a, b = os.dup(r_chrome), os.dup(w_chrome)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [chrome, "--headless=new", "--remote-debugging-pipe", "--no-sandbox", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1200,1000", "about:blank"]
        self.proc = subprocess.Popen(args, preexec_fn=fds, pass_fds=(3, 4),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(r_chrome)
        os.close(w_chrome)
        self.rfd, self.wfd = r_ours, w_ours
        self.buf = b""
        self.next_id = 0
        self.events = []

    def send(self, method, params=None, session=None, timeout=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            m = self._read(deadline)
            if m is None:
                raise TimeoutError(f"no reply to {method} within {timeout} s")
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def _read(self, deadline):
        import select
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.rfd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe: " + self.proc.stderr.read().decode()[-2000:])
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def pump(self, seconds):
        """Collects events for a while."""
        deadline = time.monotonic() + seconds
        while True:
            m = self._read(deadline)
            if m is None:
                return
            self.events.append(m)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 -- killed below anyway
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    a = ap.parse_args()
    if not a.chromium:
        print("FAILED: no chromium on PATH: install Debian's chromium (scripts/setup.sh does)", file=sys.stderr)
        return 1
    page_host = urllib.parse.urlsplit(a.url).hostname
    profile = tempfile.mkdtemp(prefix="duet-chromium-")
    cdp = Cdp(a.chromium, profile)
    failure = None
    try:
        target = cdp.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Network", "Log"):
            cdp.send(domain + ".enable", session=s)

        def js(expr, timeout=30):
            r = cdp.send("Runtime.evaluate", {"expression": expr, "returnByValue": True, "awaitPromise": True},
                         session=s, timeout=timeout)
            if "exceptionDetails" in r:
                raise RuntimeError(f"page script failed: {expr[:80]}: {r['exceptionDetails']}")
            return r["result"].get("value")

        cdp.send("Page.navigate", {"url": a.url}, session=s)
        deadline = time.monotonic() + 30
        while not js("document.readyState === 'complete' && document.querySelectorAll('#style option').length > 0"):
            if time.monotonic() > deadline:
                raise RuntimeError("the page did not load its choices in 30 s; status: " + str(js("document.getElementById('status') && document.getElementById('status').textContent")))
            cdp.pump(0.2)
        expect_abcjs = js("typeof ABCJS !== 'undefined' && typeof ABCJS.renderAbc === 'function'")
        if not expect_abcjs:
            raise RuntimeError("abcjs did not load (/vendor/abcjs/abcjs-basic-min.js): is web/node_modules there?")
        # choosing a style sets that style's own meter, unit and key (a jig is not sent as 4/4)
        for style in ("oneills-reel", "oneills-jig"):
            got = js("""fetch('/api/music').then(r => r.json()).then(j => {
              const e = document.getElementById('style'); e.value = %s;
              e.dispatchEvent(new Event('change', {bubbles: true}));
              const want = j.style_defaults[%s];
              const have = {meter: document.getElementById('meter').value, unit: document.getElementById('unit').value,
                            key: document.getElementById('key').value};
              return {want, have}; })""" % (json.dumps(style), json.dumps(style)))
            if not got["want"] or got["want"] != got["have"]:
                raise RuntimeError(f"style {style}: the form holds {got['have']}, the style's defaults are {got['want']}")
        # the form, as a person fills it
        js("""(() => {
          const set = (id, v) => { const e = document.getElementById(id); e.value = v;
                                   e.dispatchEvent(new Event('change', {bubbles: true})); };
          set('style', 'oneills-jig'); set('meter', '6/8'); set('unit', '1/8'); set('key', 'D');
          set('seed', '7'); set('temperature', '0.8');
          document.getElementById('submit').click(); return true; })()""")
        t0 = time.monotonic()
        streamed_partial = False
        while not js("window.duet.done"):
            if time.monotonic() - t0 > a.timeout:
                raise RuntimeError(f"no finished tune within {a.timeout:.0f} s; status: " +
                                   str(js("document.getElementById('status').textContent")))
            if not streamed_partial:
                streamed_partial = bool(js("document.getElementById('abc').textContent.length > 40 && !window.duet.done"))
            cdp.pump(0.1)
        secs = time.monotonic() - t0
        st = js("({status: document.getElementById('status').textContent, error: window.duet.error,"
                " notes: document.querySelectorAll('#score svg .abcjs-note').length,"
                " svgs: document.querySelectorAll('#score svg').length,"
                " abc: document.getElementById('abc').textContent,"
                " score_text: document.getElementById('score').textContent,"
                " links: ['dl-abc','dl-svg','dl-mid'].map(i => [i, document.getElementById(i).getAttribute('aria-disabled'),"
                "   (document.getElementById(i).href || '').slice(0, 5)]),"
                " player: document.querySelectorAll('#audio .abcjs-midi-start').length})")
        if st["error"]:
            raise RuntimeError("the page reports an error: " + st["error"])
        if st["notes"] < 8:
            raise RuntimeError(f"the rendered score holds {st['notes']} notes (wanted >= 8); abc: {st['abc'][:300]!r}")
        # the tune's header as duet-edge generate writes it: X:, a title, Q:, the seed; then the prompt
        if not (st["abc"].startswith("X:1\nT:") and "\nQ:" in st["abc"] and "seed 7" in st["abc"]
                and "\nS:oneills-jig\nM:6/8\nL:1/8\nK:D\n" in st["abc"]):
            raise RuntimeError(f"the tune does not start with the chosen header: {st['abc'][:200]!r}")
        # the S: header line (the style) is the prompt's, not a source: abcjs would write it under
        # the score as "Source: ..."; the page leaves it out of the score (the .abc keeps it)
        if "Source:" in st["score_text"] or "abcjs-source" in js("document.getElementById('score').innerHTML"):
            raise RuntimeError("the score shows the S: line as \"Source: ...\": " +
                               repr(st["score_text"][-200:]))
        # the status says why the tune ended in the server's words (GET /api/music's stop_reasons,
        # the CLI's summary line), not a bare name
        words = js("fetch('/api/music').then(r => r.json()).then(j => Object.values(j.stop_reasons || {}))")
        if not words or not any("(" + w + ")" in st["status"] for w in words):
            raise RuntimeError(f"the status does not give the stop reason in words: {st['status']!r} ({words})")
        for name, disabled, href in st["links"]:
            if disabled != "false" or href != "blob:":
                raise RuntimeError(f"download {name} is not ready ({disabled}, {href!r})")
        if st["player"] < 1:
            raise RuntimeError("no play button: the abcjs synth controller did not load")
        # the MIDI download holds a MIDI file; a note sample decodes in the browser (offline playback)
        midi = js("fetch(document.getElementById('dl-mid').href).then(r => r.arrayBuffer())"
                  ".then(b => String.fromCharCode(...new Uint8Array(b).slice(0, 4)))")
        if midi != "MThd":
            raise RuntimeError(f"the .mid download is not a MIDI file (starts {midi!r})")
        decoded = js("fetch('/soundfont/acoustic_grand_piano-mp3/A4.mp3').then(r => r.arrayBuffer())"
                     ".then(b => new OfflineAudioContext(1, 22050, 22050).decodeAudioData(b)).then(a => a.duration)")
        if not decoded or decoded < 0.5:
            raise RuntimeError(f"a note sample did not decode in the browser ({decoded!r})")
        cdp.pump(0.5)  # let the last render settle before the picture
        shot = cdp.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=s)
        with open(a.screenshot, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        # nothing may leave the machine, and the console must be clean
        off = [e["params"]["request"]["url"] for e in cdp.events if e.get("method") == "Network.requestWillBeSent"
               and urllib.parse.urlsplit(e["params"]["request"]["url"]).hostname not in (page_host, None)
               and not e["params"]["request"]["url"].startswith(("blob:", "data:"))]
        if off:
            raise RuntimeError("the page asked for things beyond this machine: " + ", ".join(off[:5]))
        errs = [e["params"]["exceptionDetails"].get("text", "") + " " +
                str(e["params"]["exceptionDetails"].get("exception", {}).get("description", ""))
                for e in cdp.events if e.get("method") == "Runtime.exceptionThrown"]
        errs += [" ".join(str(x.get("value", "")) for x in e["params"]["args"]) for e in cdp.events
                 if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
        if errs:
            raise RuntimeError("errors in the page's console: " + " | ".join(errs[:5]))
        print(f"music page: ok ({st['notes']} notes, tune written in {secs:.1f} s, streamed in: "
              f"{'yes' if streamed_partial else 'too fast to see'}; {st['status']}); screenshot {a.screenshot}")
    except Exception as e:  # noqa: BLE001 -- the reason is the output
        failure = str(e)
    finally:
        cdp.close()
        shutil.rmtree(profile, ignore_errors=True)
    if failure:
        print("FAILED: " + failure, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
