// The microphone's samples, render quantum by render quantum (channels averaged), posted to the page (demo.js).
class Capture extends AudioWorkletProcessor {
  process(inputs) {
    const channels = inputs[0];
    if (channels.length) {
      const mono = new Float32Array(channels[0].length);
      for (const channel of channels) channel.forEach((v, i) => { mono[i] += v / channels.length; });
      this.port.postMessage(mono, [mono.buffer]);
    }
    return true;
  }
}
registerProcessor("capture", Capture);
