// callscribe demo page: live captions from the microphone over the native streaming WebSocket
// (`/v1/stream`) or as a WebRTC call (`callscribe-webrtc.js`, the module other web apps embed),
// and file transcription (`POST /v1/audio/transcriptions`). No dependencies.

import { errorMessage, startCaptions } from "./callscribe-webrtc.js";

const STREAM_RATES = [8000, 16000, 48000];
const CHUNK_MS = 100;
const CLOSE_REASONS = {
  1006: "the connection dropped",
  1011: "the server hit an internal error",
  4400: "the stream's configuration was refused",
  4401: "this server needs an API key or stream token (enter one under Settings)",
  4429: "over the tenant's stream limit; try again when another stream has ended",
};

const $ = (id) => document.getElementById(id);
const el = {
  language: $("language"),
  transport: $("transport"),
  hotwords: $("hotwords"),
  credential: $("credential"),
  toggle: $("live-toggle"),
  apply: $("hotwords-apply"),
  status: $("live-status"),
  liveError: $("live-error"),
  empty: $("captions-empty"),
  finals: $("finals"),
  partial: $("partial"),
  meta: $("live-meta"),
  clear: $("captions-clear"),
  fileForm: $("file-form"),
  fileInput: $("file-input"),
  fileSubmit: $("file-submit"),
  fileStatus: $("file-status"),
  fileError: $("file-error"),
  fileResult: $("file-result"),
  fileText: $("file-text"),
  fileSegments: $("file-segments").querySelector("tbody"),
};

// What the download buttons save: [{start, end, text}] in seconds, per panel.
const transcripts = { live: [], file: [] };

// ---------------------------------------------------------------- helpers

function showError(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

function hotwordsText() {
  const lines = el.hotwords.value
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  return lines.length ? lines.join("\n") : null;
}

function seconds(ms) {
  return (ms / 1000).toFixed(1) + " s";
}

function clock(s) {
  const minutes = Math.floor(s / 60);
  const rest = (s - minutes * 60).toFixed(1).padStart(4, "0");
  return `${minutes}:${rest}`;
}

/** The credential field: a tenant key (`cs_…`) or a stream token, or nothing (local mode). */
function credential() {
  const value = el.credential.value.trim();
  if (!value) return { kind: "none" };
  return value.startsWith("cs_") ? { kind: "key", value } : { kind: "token", value };
}

/** A stream token for the socket (browsers cannot send headers on a WebSocket). */
async function streamToken() {
  const cred = credential();
  if (cred.kind === "none") return null;
  if (cred.kind === "token") return cred.value;
  const response = await fetch("v1/tokens", {
    method: "POST",
    headers: { authorization: `Bearer ${cred.value}`, "content-type": "application/json" },
    body: "{}",
  });
  if (!response.ok) throw new Error(`the key was refused: ${await errorMessage(response)}`);
  return (await response.json()).token;
}

// ---------------------------------------------------------------- live captions

let live = null; // the running session, or null

function setStatus(text, state = "") {
  el.status.textContent = text;
  el.status.dataset.state = state;
}

function setRunning(running) {
  el.toggle.textContent = running ? "Stop" : "Start";
  el.toggle.setAttribute("aria-pressed", String(running));
  el.toggle.classList.toggle("danger", running);
  el.toggle.classList.toggle("primary", !running);
  el.apply.disabled = !running;
}

function showPartial(event) {
  const stable = event.stable || "";
  const text = event.text || "";
  // `unstable` comes trimmed: take the tail from `text` to keep the space between the two.
  let unstable = event.unstable || "";
  if (text.startsWith(stable)) unstable = text.slice(stable.length);
  else if (stable && unstable && !/\s$/.test(stable) && event.language !== "zh") {
    unstable = " " + unstable;
  }
  el.partial.querySelector(".stable").textContent = stable;
  el.partial.querySelector(".unstable").textContent = unstable;
  el.partial.dataset.segment = String(event.segment);
  el.partial.hidden = !(stable || unstable);
  el.empty.hidden = true;
}

function addFinal(event) {
  if (el.partial.dataset.segment === String(event.segment)) el.partial.hidden = true;
  const text = (event.text || "").trim();
  if (!text) return;
  const item = document.createElement("li");
  item.className = "final";
  item.setAttribute("data-testid", "final");
  item.dataset.segment = String(event.segment);
  const body = document.createElement("span");
  body.className = "final-text";
  body.textContent = text;
  const meta = document.createElement("span");
  meta.className = "final-meta";
  const tags = [];
  if (event.language) tags.push(event.language);
  tags.push(`${seconds(event.start_ms)}–${seconds(event.end_ms)}`);
  if (event.hotword_version !== null && event.hotword_version !== undefined) {
    tags.push(`hot-words v${event.hotword_version}`);
  }
  for (const tag of tags) {
    const pill = document.createElement("span");
    pill.className = "pill";
    pill.textContent = tag;
    meta.append(pill);
  }
  if (event.hotwords && event.hotwords.length) meta.title = `Prompted: ${event.hotwords.join(", ")}`;
  item.append(body, meta);
  el.finals.append(item);
  transcripts.live.push({ start: event.start_ms / 1000, end: event.end_ms / 1000, text });
  el.empty.hidden = true;
  item.scrollIntoView({ block: "nearest" });
}

function onEvent(event) {
  switch (event.type) {
    case "ready":
      setStatus(`Listening (${event.sample_rate / 1000} kHz, ${event.language})`, "live");
      break;
    case "partial":
      showPartial(event);
      break;
    case "final":
      addFinal(event);
      break;
    case "hotwords_set":
      el.meta.textContent = `Hot-words apply from segment ${event.applies_from_segment}.`;
      break;
    case "error":
      showError(el.liveError, `Error (${event.code}): ${event.message}`);
      break;
    case "closed":
      if (live) live.closedByServer = true;
      break;
    case "call_ended":
      if (live) {
        live.closedByServer = true;
        teardown(live);
      }
      break;
    default:
      break; // endpoint, pong
  }
}

async function startLive() {
  showError(el.liveError, "");
  el.meta.textContent = "";
  setStatus("Starting…", "busy");
  el.toggle.disabled = true;
  const session = { configured: false, stopping: false, closedByServer: false };
  live = session;
  if (el.transport.value === "webrtc") {
    await startWebrtc(session);
    return;
  }
  try {
    if (!navigator.mediaDevices || !window.AudioWorkletNode) {
      throw new Error("this browser cannot capture audio here (it needs https or localhost)");
    }
    const token = await streamToken();
    session.stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
    const context = new AudioContext({ latencyHint: "interactive" });
    session.context = context;
    const rate = context.sampleRate;
    const targetRate = STREAM_RATES.includes(rate) ? rate : rate > 16000 ? 16000 : 8000;
    await context.audioWorklet.addModule(new URL("pcm-worklet.js", import.meta.url));
    const source = context.createMediaStreamSource(session.stream);
    const node = new AudioWorkletNode(context, "pcm-chunker", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      channelCount: 1,
      channelCountMode: "explicit",
      processorOptions: { targetRate, chunkMs: CHUNK_MS },
    });
    session.node = node;
    const mute = context.createGain(); // keeps the graph pulling without playing anything back
    mute.gain.value = 0;
    source.connect(node).connect(mute).connect(context.destination);

    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const url = new URL("v1/stream", location.href);
    url.protocol = scheme;
    if (token) url.searchParams.set("token", token);
    const socket = new WebSocket(url);
    socket.binaryType = "arraybuffer";
    session.socket = socket;
    socket.onopen = () => {
      const config = {
        encoding: "pcm_s16le",
        sample_rate: targetRate,
        language: el.language.value,
        interim_results: true,
      };
      const hotwords = hotwordsText();
      if (hotwords) config.hotwords = hotwords;
      socket.send(JSON.stringify(config));
      session.configured = true; // audio may follow at once: the server reads it after `ready`
    };
    socket.onmessage = (message) => {
      if (typeof message.data !== "string") return;
      try {
        onEvent(JSON.parse(message.data));
      } catch (error) {
        showError(el.liveError, `Bad message from the server: ${error.message}`);
      }
    };
    socket.onclose = (close) => {
      const clean = session.stopping && (close.code === 1000 || session.closedByServer);
      if (!clean) {
        const why = close.reason || CLOSE_REASONS[close.code] || "no reason given";
        const known = CLOSE_REASONS[close.code];
        const detail = known && close.reason && known !== close.reason ? ` — ${known}` : "";
        showError(el.liveError, `The stream closed (code ${close.code}): ${why}${detail}`);
      }
      teardown(session);
    };
    node.port.onmessage = (message) => {
      if (message.data instanceof ArrayBuffer) {
        if (session.configured && socket.readyState === WebSocket.OPEN) socket.send(message.data);
      } else if (message.data && message.data.flushed && socket.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "end" }));
      }
    };
    setRunning(true);
    setStatus("Connecting…", "busy");
  } catch (error) {
    startFailed(session, error);
  } finally {
    el.toggle.disabled = false;
  }
}

function startFailed(session, error) {
  const message =
    error.name === "NotAllowedError"
      ? "microphone access was refused"
      : error.name === "NotFoundError"
        ? "no microphone found"
        : error.message;
  showError(el.liveError, `Could not start: ${message}`);
  teardown(session);
}

/** The microphone as a WebRTC call: audio on the track, the call's events on the data channel.
 * Raw capture (no echo cancellation, noise suppression or gain control): ASR wants the signal. */
async function startWebrtc(session) {
  try {
    if (!navigator.mediaDevices || !window.RTCPeerConnection) {
      throw new Error("this browser cannot make WebRTC calls here (it needs https or localhost)");
    }
    session.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    const cred = credential();
    const hotwords = hotwordsText();
    session.call = await startCaptions(session.stream.getAudioTracks()[0], {
      token: cred.kind === "token" ? cred.value : null,
      key: cred.kind === "key" ? cred.value : null,
      language: el.language.value,
      hotwords,
      onEvent(event) {
        if (live === session) onEvent(event);
      },
      onOpen: () => setStatus(`Listening (WebRTC, ${el.language.value})`, "live"),
      onFailed() {
        if (live !== session) return;
        showError(el.liveError, "The WebRTC connection failed");
        teardown(session);
      },
    });
    if (live !== session) {
      session.call.close(); // stopped meanwhile
      return;
    }
    el.meta.textContent = hotwords
      ? "WebRTC call: the tenant's hot-word lists apply, plus the ones above."
      : "WebRTC call: the tenant's hot-word lists apply.";
    setRunning(true);
    el.apply.disabled = true; // hot-words are set per call here: change them before Start
    setStatus("Connecting…", "busy");
  } catch (error) {
    startFailed(session, error);
  } finally {
    el.toggle.disabled = false;
  }
}

/** Stop capturing; the server flushes the last segment, sends `closed`, then closes. */
function stopLive() {
  const session = live;
  if (!session) return;
  session.stopping = true;
  setStatus("Finishing…", "busy");
  stopCapture(session);
  if (session.call) {
    // WebRTC: hang up; the last finals, then `call_ended`, come on the data channel.
    if (session.call.hangUp()) session.timer = setTimeout(() => teardown(session), 30000);
    else teardown(session);
    return;
  }
  if (session.node && session.socket && session.socket.readyState === WebSocket.OPEN) {
    session.node.port.postMessage("flush"); // the remainder, then `end` (see port.onmessage)
    session.timer = setTimeout(() => session.socket.close(1000, "client stopped"), 30000);
  } else {
    teardown(session);
  }
}

function stopCapture(session) {
  if (session.stream) session.stream.getTracks().forEach((track) => track.stop());
  session.stream = null;
}

function teardown(session) {
  stopCapture(session);
  clearTimeout(session.timer);
  if (session.context && session.context.state !== "closed") session.context.close();
  if (session.socket && session.socket.readyState <= WebSocket.OPEN) session.socket.close();
  if (session.call) session.call.close();
  if (live === session) {
    live = null;
    setRunning(false);
    setStatus(session.closedByServer ? "Stopped" : "Idle");
  }
}

el.toggle.addEventListener("click", () => (live ? stopLive() : startLive()));
// Closing the tab: close the peer now, so the server ends and stores the call at once (it
// would otherwise wait for ICE consent to run out).
addEventListener("pagehide", () => live && live.call && live.call.close());

el.apply.addEventListener("click", () => {
  if (!live || !live.socket || live.socket.readyState !== WebSocket.OPEN) return;
  live.socket.send(JSON.stringify({ type: "hotwords", hotwords: hotwordsText() || "" }));
});

el.clear.addEventListener("click", () => {
  el.finals.replaceChildren();
  transcripts.live = [];
  el.partial.hidden = true;
  el.empty.hidden = false;
  el.meta.textContent = "";
  showError(el.liveError, "");
});

// ---------------------------------------------------------------- file transcription

function showSegments(segments) {
  transcripts.file = segments.map((s) => ({ start: s.start, end: s.end, text: s.text.trim() }));
  el.fileSegments.replaceChildren(
    ...segments.map((segment) => {
      const row = document.createElement("tr");
      row.setAttribute("data-testid", "file-segment");
      for (const [value, cls] of [
        [clock(segment.start), "time"],
        [clock(segment.end), "time"],
        [segment.text.trim(), ""],
      ]) {
        const cell = document.createElement("td");
        cell.textContent = value;
        if (cls) cell.className = cls;
        row.append(cell);
      }
      return row;
    }),
  );
}

el.fileForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  showError(el.fileError, "");
  const file = el.fileInput.files[0];
  if (!file) {
    showError(el.fileError, "Choose a recording first.");
    return;
  }
  const form = new FormData();
  form.append("file", file);
  form.append("response_format", "verbose_json");
  if (el.language.value !== "auto") form.append("language", el.language.value);
  const hotwords = hotwordsText();
  if (hotwords) form.append("hotwords", hotwords);
  const cred = credential();
  const url = new URL("v1/audio/transcriptions", location.href);
  const headers = {};
  if (cred.kind === "key") headers.authorization = `Bearer ${cred.value}`;
  if (cred.kind === "token") url.searchParams.set("token", cred.value);
  el.fileSubmit.disabled = true;
  el.fileStatus.textContent = `Transcribing ${file.name}…`;
  const started = performance.now();
  try {
    const response = await fetch(url, { method: "POST", body: form, headers });
    if (!response.ok) throw new Error(await errorMessage(response));
    const result = await response.json();
    el.fileText.textContent = result.text.trim() || "(no speech found)";
    showSegments(result.segments || []);
    el.fileResult.hidden = false;
    const took = ((performance.now() - started) / 1000).toFixed(1);
    const duration = result.duration ? `${result.duration.toFixed(1)} s of audio, ` : "";
    el.fileStatus.textContent = `${result.language || ""} · ${duration}took ${took} s`;
  } catch (error) {
    el.fileStatus.textContent = "";
    showError(el.fileError, `Could not transcribe ${file.name}: ${error.message}`);
  } finally {
    el.fileSubmit.disabled = false;
  }
});

// ---------------------------------------------------------------- transcript downloads

function timestamp(s, separator) {
  const ms = Math.max(0, Math.round(s * 1000));
  const pad = (n, width = 2) => String(n).padStart(width, "0");
  const clockPart = `${pad(Math.floor(ms / 3600000))}:${pad(Math.floor(ms / 60000) % 60)}`;
  return `${clockPart}:${pad(Math.floor(ms / 1000) % 60)}${separator}${pad(ms % 1000, 3)}`;
}

function renderTranscript(segments, format) {
  if (format === "json") {
    return JSON.stringify({ text: segments.map((s) => s.text).join(" "), segments }, null, 2);
  }
  if (format === "txt") return segments.map((s) => s.text).join("\n") + "\n";
  const separator = format === "srt" ? "," : ".";
  const cues = segments.map((s, index) => {
    const range = `${timestamp(s.start, separator)} --> ${timestamp(s.end, separator)}`;
    return format === "srt" ? `${index + 1}\n${range}\n${s.text}\n` : `${range}\n${s.text}\n`;
  });
  return (format === "vtt" ? "WEBVTT\n\n" : "") + cues.join("\n");
}

const MEDIA_TYPES = {
  txt: "text/plain",
  srt: "application/x-subrip",
  vtt: "text/vtt",
  json: "application/json",
};

function downloadTranscript(which) {
  const format = $(`${which}-format`).value;
  const text = renderTranscript(transcripts[which], format);
  const url = URL.createObjectURL(new Blob([text], { type: `${MEDIA_TYPES[format]};charset=utf-8` }));
  const link = document.createElement("a");
  link.href = url;
  link.download = `${which === "live" ? "captions" : "transcript"}.${format}`;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

$("live-download").addEventListener("click", () => downloadTranscript("live"));
$("file-download").addEventListener("click", () => downloadTranscript("file"));
