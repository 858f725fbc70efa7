// The music page: asks duet-edge serve for a tune (POST /api/music, server-sent events in
// OpenAI's completion chunk format), shows the ABC as it is written, renders the score with
// abcjs, plays it with note samples the edge makes (/soundfont/), and offers .abc/.svg/.mid.
// Nothing here leaves the machine: abcjs comes from web/node_modules through the edge binary.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { abc: "", visual: null, controller: null, abort: null, busy: false };
// what the page exposes to tests: done, notes, error
window.duet = { done: false, notes: 0, error: null };

function status(text, error) {
  $("status").textContent = text;
  $("status").className = error ? "error" : "";
  if (error) window.duet.error = text;
}

// duet's stop reasons in words (edge/client/stop_reason.hpp), from GET /api/music: the same
// words as duet-edge generate's summary line
let STOP_TEXT = {};

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value || localStorage.getItem("duet-api-key");
  if (key) h.Authorization = "Bearer " + key;
  return h;
}

function fill(select, values, chosen) {
  select.innerHTML = "";
  for (const v of values) {
    const o = document.createElement("option");
    o.value = o.textContent = v;
    if (v === chosen) o.selected = true;
    select.appendChild(o);
  }
}

async function loadChoices() {
  const r = await fetch("/api/music", { headers: headers() });
  if (r.status === 401) {
    $("apikey-label").hidden = false;
    status("This server asks for an API key: enter it and press Write a tune.", true);
    return false;
  }
  const j = await r.json();
  if (!r.ok) { status(j.error ? j.error.message : "cannot read /api/music", true); return false; }
  $("model").textContent = j.model;
  STOP_TEXT = j.stop_reasons || {};
  fill($("style"), j.styles, j.defaults.style);
  fill($("meter"), j.meters, j.defaults.meter);
  fill($("unit"), j.units, j.defaults.unit);
  fill($("key"), j.keys, j.defaults.key);
  // a style comes with its own meter, unit and key (a jig is 6/8, L:1/8): choosing one sets them
  state.styleDefaults = j.style_defaults || {};
  $("style").onchange = () => {
    const d = state.styleDefaults[$("style").value];
    if (!d) return;
    for (const f of ["meter", "unit", "key"])
      if ([...$(f).options].some((o) => o.value === d[f])) $(f).value = d[f];
  };
  if ($("temperature").value === "") $("temperature").value = j.temperature;  // keep what was typed (a key-first load)
  status("Choose and press Write a tune.");
  return true;
}

// The tune as the score shows it: without the header's S: line (the style the model was
// prompted with), which abcjs writes under the score as "Source: ..." and has no option to hide
// (abcjs 6.4's bottom text). The .abc download and the MIDI keep the tune whole.
function scoreAbc(abc) {
  const k = abc.search(/^K:/m);
  const head = k < 0 ? abc : abc.slice(0, k);
  return head.replace(/^S:.*(\r?\n|$)/gm, "") + (k < 0 ? "" : abc.slice(k));
}

// Render the tune so far (during the stream) or for good (at the end).
function render(final) {
  if (typeof ABCJS === "undefined") { status("abcjs did not load: run scripts/setup.sh (npm ci in web/)", true); return; }
  const tunes = ABCJS.renderAbc("score", scoreAbc(state.abc), { responsive: "resize", add_classes: true, paddingbottom: 10 });
  state.visual = tunes[0];
  $("abc").textContent = state.abc;
  if (!final) return;
  const notes = document.querySelectorAll("#score .abcjs-note").length;
  window.duet.notes = notes;
  setDownloads();
  setPlayer();
  return notes;
}

function setLink(a, blob) {
  if (a.href && a.href.startsWith("blob:")) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(blob);
  a.setAttribute("aria-disabled", "false");
}

function setDownloads() {
  setLink($("dl-abc"), new Blob([state.abc], { type: "text/vnd.abc" }));
  const svg = document.querySelector("#score svg");
  if (svg) {
    const copy = svg.cloneNode(true);
    copy.setAttribute("xmlns", "http://www.w3.org/2000/svg");
    setLink($("dl-svg"), new Blob(['<?xml version="1.0" encoding="UTF-8"?>\n' + copy.outerHTML], { type: "image/svg+xml" }));
  }
  try {
    const mid = ABCJS.synth.getMidiFile(state.abc, { midiOutputType: "binary" });
    if (mid && mid[0]) setLink($("dl-mid"), new Blob([mid[0]], { type: "audio/midi" }));
  } catch (e) {
    console.warn("no MIDI:", e);
  }
}

function setPlayer() {
  if (!ABCJS.synth.supportsAudio()) { $("audio").textContent = "This browser cannot play audio."; return; }
  if (!state.controller) {
    state.controller = new ABCJS.synth.SynthController();
    state.controller.load("#audio", null, { displayPlay: true, displayProgress: true, displayRestart: true });
  }
  // the samples come from this server (/soundfont/), made by duet-edge
  state.controller.setTune(state.visual, false, { soundFontUrl: "/soundfont/" }).catch((e) => {
    console.warn("player:", e);
  });
}

async function writeTune(ev) {
  ev.preventDefault();
  if (state.busy) return;
  if ($("apikey").value) localStorage.setItem("duet-api-key", $("apikey").value);
  if (!$("style").options.length && !(await loadChoices())) return;
  state.busy = true;
  window.duet = { done: false, notes: 0, error: null };
  state.abc = "";
  $("submit").disabled = true;
  $("stop").disabled = false;
  for (const a of ["dl-abc", "dl-svg", "dl-mid"]) $(a).setAttribute("aria-disabled", "true");
  status("Writing…");
  state.abort = new AbortController();
  const body = {
    style: $("style").value, meter: $("meter").value, unit: $("unit").value, key: $("key").value,
    seed: parseInt($("seed").value || "0", 10), temperature: parseFloat($("temperature").value || "0"),
  };
  let tokens = 0, finish = null, lastRender = 0;
  const t0 = performance.now();
  try {
    const r = await fetch("/api/music", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: state.abort.signal });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : "HTTP " + r.status);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const event = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const j = JSON.parse(data);
        if (j.error) throw new Error(j.error.message);
        if (j.usage) tokens = j.usage.completion_tokens;
        if (!j.choices || !j.choices.length) continue;
        state.abc += j.choices[0].text;
        if (j.choices[0].finish_reason) finish = j.stop_reason || j.choices[0].finish_reason;
      }
      $("abc").textContent = state.abc;
      const now = performance.now();
      if (now - lastRender > 400) { lastRender = now; render(false); }
    }
    const notes = render(true);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    status(`Done: ${tokens} tokens in ${secs} s (${STOP_TEXT[finish] || finish}), ${notes} notes.`);
  } catch (e) {
    if (e.name === "AbortError") {
      if (state.abc) render(true);
      status("Stopped.");
    } else {
      status("Error: " + e.message, true);
    }
  } finally {
    state.busy = false;
    $("submit").disabled = false;
    $("stop").disabled = true;
    window.duet.done = true;
  }
}

$("form").addEventListener("submit", writeTune);
$("stop").addEventListener("click", () => state.abort && state.abort.abort());
loadChoices().catch((e) => status("Cannot reach duet-edge serve: " + e.message, true));
