// callscribe demo: microphone samples (Float32, the AudioContext's rate) to PCM16 LE mono
// chunks of about 100 ms at `targetRate`, posted to the page as ArrayBuffers.
// Downsampling (when the context runs at a rate the stream does not take) averages the input
// samples that fall into each output sample: a crude low-pass, good enough for speech.

class PcmChunker extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetRate = 16000, chunkMs = 100 } = options.processorOptions || {};
    this.ratio = sampleRate / targetRate; // input samples per output sample (>= 1 here)
    this.chunk = new Int16Array(Math.round((targetRate * chunkMs) / 1000));
    this.filled = 0;
    this.acc = 0; // sum of the inputs for the output sample being built
    this.accCount = 0;
    this.phase = 0; // input samples consumed towards the next output sample
    this.stopped = false;
    this.port.onmessage = (event) => {
      if (event.data === "flush") {
        this.post();
        this.stopped = true;
        this.port.postMessage({ flushed: true });
      }
    };
  }

  push(value) {
    const clamped = Math.max(-1, Math.min(1, value));
    this.chunk[this.filled++] = clamped < 0 ? clamped * 0x8000 : clamped * 0x7fff;
    if (this.filled === this.chunk.length) this.post();
  }

  post() {
    if (this.filled === 0) return;
    const out = this.chunk.slice(0, this.filled);
    this.port.postMessage(out.buffer, [out.buffer]);
    this.filled = 0;
  }

  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (!input || input.length === 0) return true;
    const channel = input[0]; // the first channel: calls are mono
    if (this.ratio === 1) {
      for (let i = 0; i < channel.length; i++) this.push(channel[i]);
      return true;
    }
    for (let i = 0; i < channel.length; i++) {
      this.acc += channel[i];
      this.accCount++;
      this.phase += 1;
      if (this.phase >= this.ratio) {
        this.push(this.acc / this.accCount);
        this.phase -= this.ratio;
        this.acc = 0;
        this.accCount = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-chunker", PcmChunker);
