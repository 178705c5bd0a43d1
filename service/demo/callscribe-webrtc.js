// callscribe captions over WebRTC: one audio track in, the call's events (partial, final,
// endpoint, error, call_ended) back as JSON on a `captions` data channel. The demo page uses it
// and other web apps embed it (README, "Embedding captions"). No dependencies.

const ICE_GATHERING_MS = 5000;

/** The reason in a callscribe error response (`{"error": {"message"}}`), else the status. */
export async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
    if (body && body.detail) return JSON.stringify(body.detail);
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText}`.trim();
}

/** Resolves once the peer has gathered every ICE candidate (the server does not trickle). */
function iceGathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHERING_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

/**
 * Start a callscribe call that captions `track` (an audio MediaStreamTrack: the microphone, or
 * a track of the app's own RTCPeerConnection call). Its own peer connection, so the app's call
 * is left as it is.
 *
 * Options: `server` (callscribe's base URL; default this page's), `token` (a stream token from
 * `POST /v1/tokens`, minted by the app's backend) or `key` (a tenant key; never in a page
 * others load), `language` ("auto" | "en" | "zh"), `hotwords` (phrases for this call, one per
 * line, on top of the tenant's lists), `iceServers` (STUN/TURN, default none), `onEvent(event)`,
 * `onOpen()` (captions flow), `onFailed()` (the media path broke).
 *
 * Resolves to `{callId, pc, channel, hangUp(), close()}`: `hangUp()` asks for the last finals
 * and `call_ended` (false when the channel is not open: then it closes at once); `close()`
 * drops the call (the server ends and stores it either way). Rejects with an Error (`.status` set when the server refused the call).
 */
export async function startCaptions(track, options = {}) {
  const {
    server = location.href,
    token = null,
    key = null,
    language = "auto",
    hotwords = null,
    iceServers = [],
    onEvent = () => {},
    onOpen = () => {},
    onFailed = () => {},
  } = options;
  const pc = new RTCPeerConnection({ iceServers });
  try {
    pc.addTrack(track);
    const channel = pc.createDataChannel("captions");
    channel.onopen = () => onOpen();
    channel.onmessage = (message) => {
      if (typeof message.data === "string") onEvent(JSON.parse(message.data));
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") onFailed();
    };
    await pc.setLocalDescription(await pc.createOffer());
    await iceGathered(pc);
    const url = new URL("v1/webrtc/offer", new URL(server, location.href));
    const headers = { "content-type": "application/json" };
    if (key) headers.authorization = `Bearer ${key}`;
    if (token) url.searchParams.set("token", token);
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", language, hotwords }),
    });
    if (!response.ok) {
      const error = new Error(`the call was refused: ${await errorMessage(response)}`);
      error.status = response.status;
      throw error;
    }
    const answer = await response.json();
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    return {
      callId: answer.call_id,
      pc,
      channel,
      hangUp() {
        if (channel.readyState !== "open") {
          pc.close();
          return false;
        }
        channel.send(JSON.stringify({ type: "end" }));
        return true;
      },
      close() {
        pc.close();
      },
    };
  } catch (error) {
    pc.close();
    throw error;
  }
}
