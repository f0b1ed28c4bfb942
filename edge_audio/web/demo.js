// edge-audio's browser demo: a published model classifies the microphone (a sliding window) or a WAV file, in this
// page, with ONNX Runtime Web (WebAssembly). `edge-audio demo MODEL OUT/` writes this folder: demo.json says what
// to run (the model file, the hop, the front end when the model takes log-mel input) and card.json is the model's
// card. The front end is the one the model was trained with: inside the graph for a raw-audio model
// (models/<name>_waveform.onnx), else computed here exactly as edge_audio.features.LogMelFrontEnd does (centred STFT,
// Hann window, reflect padding, power, the package's mel filterbank, log(mel + epsilon)).
// window.demo holds what the page shows, for a test to read.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#0e7490", "#bf3989"];
const MAX_WINDOWS = 240;  // the microphone's windows kept for the timeline (2 minutes at the default hop)

const demo = { ready: false, listening: false, status: "", problem: null, windows: [], file: null, skipped: 0,
  firstSound: null, shown: null };
window.demo = demo;

async function fetchJson(name) {
  const response = await fetch(name);
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status}`);
  return response.json();
}

function say(text) { demo.status = text; $("status").textContent = text; }

function complain(text) {
  demo.problem = text;
  $("problem").textContent = text;
  $("problem").hidden = false;
}

// ---- the front end (log-mel models only) ------------------------------------------------------------------------

function makeFft(size) {  // in-place iterative radix-2 FFT of (re, im), size a power of two
  const bits = Math.log2(size);
  const reversed = new Uint32Array(size);
  for (let i = 0; i < size; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    reversed[i] = r;
  }
  const cos = new Float64Array(size / 2), sin = new Float64Array(size / 2);
  for (let i = 0; i < size / 2; i++) { cos[i] = Math.cos(-2 * Math.PI * i / size); sin[i] = Math.sin(-2 * Math.PI * i / size); }
  return (re, im) => {
    for (let i = 0; i < size; i++) {
      const j = reversed[i];
      if (j > i) { [re[i], re[j]] = [re[j], re[i]]; [im[i], im[j]] = [im[j], im[i]]; }
    }
    for (let length = 2; length <= size; length *= 2) {
      const half = length / 2, step = size / length;
      for (let start = 0; start < size; start += length) {
        for (let k = 0; k < half; k++) {
          const wr = cos[k * step], wi = sin[k * step], a = start + k, b = a + half;
          const tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
          re[b] = re[a] - tr; im[b] = im[a] - ti; re[a] += tr; im[a] += ti;
        }
      }
    }
  };
}

function makeLogMel(frontEnd, samples) {  // Float32Array(samples) -> Float32Array(n_mels * frames), mel-major
  const nFft = frontEnd.n_fft, hop = frontEnd.hop_length, nMels = frontEnd.n_mels, half = nFft / 2;
  const bins = half + 1, frames = 1 + Math.floor(samples / hop);
  const hann = Float64Array.from({ length: nFft }, (_, i) => 0.5 - 0.5 * Math.cos(2 * Math.PI * i / nFft));
  const filterbank = Float64Array.from(frontEnd.mel_filterbank.flat());
  const fft = makeFft(nFft);
  const padded = new Float64Array(samples + nFft), re = new Float64Array(nFft), im = new Float64Array(nFft);
  const power = new Float64Array(bins);
  return (wave) => {
    for (let i = 0; i < samples; i++) padded[half + i] = wave[i];
    for (let k = 1; k <= half; k++) { padded[half - k] = wave[k]; padded[half + samples - 1 + k] = wave[samples - 1 - k]; }
    const out = new Float32Array(nMels * frames);
    for (let t = 0; t < frames; t++) {
      for (let i = 0; i < nFft; i++) { re[i] = padded[t * hop + i] * hann[i]; im[i] = 0; }
      fft(re, im);
      for (let b = 0; b < bins; b++) power[b] = re[b] * re[b] + im[b] * im[b];
      for (let m = 0; m < nMels; m++) {
        let sum = 0;
        for (let b = 0, row = m * bins; b < bins; b++) sum += filterbank[row + b] * power[b];
        out[m * frames + t] = Math.log(sum + frontEnd.log_epsilon);
      }
    }
    return out;
  };
}

// ---- the model ---------------------------------------------------------------------------------------------------

function softmax(logits) {
  const top = Math.max(...logits), shifted = Array.from(logits, (v) => Math.exp(v - top));
  const total = shifted.reduce((a, b) => a + b, 0);
  return shifted.map((v) => v / total);
}

async function makeClassifier(card, config) {
  ort.env.wasm.numThreads = 1;  // threads need a cross-origin-isolated page, which a plain static server is not
  const session = await ort.InferenceSession.create(config.model, { executionProviders: ["wasm"] });
  const samples = Math.round(card.front_end.sample_rate * card.front_end.duration);
  const logMel = config.front_end ? makeLogMel(config.front_end, samples) : null;
  const [input, output] = [session.inputNames[0], session.outputNames[0]];
  const classifier = {
    samples,
    async classify(wave) {  // one window (Float32Array of `samples`) -> {probabilities, ms}
      const began = performance.now();
      const data = logMel ? logMel(wave) : wave;
      const result = await session.run({ [input]: new ort.Tensor("float32", data, card.input.shape) });
      return { probabilities: softmax(result[output].data), ms: performance.now() - began };
    },
  };
  await classifier.classify(new Float32Array(samples));  // the first run prepares the kernels: not a window's latency
  return classifier;
}

function fitWindow(wave, start, samples) {  // wave[start:] cropped or zero-padded at the end, as in training
  const window = new Float32Array(samples);
  window.set(wave.subarray(start, Math.min(start + samples, wave.length)));
  return window;
}

// ---- what the page shows -----------------------------------------------------------------------------------------

function ranked(probabilities) {
  return probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
}

function percent(p) { return `${(100 * p).toFixed(1)} %`; }

function showNow(probabilities, source) {
  const classes = demo.card.classes;
  $("now-source").textContent = source;
  $("top").replaceChildren(...ranked(probabilities).slice(0, demo.config.top).map(([p, i], place) => {
    const item = document.createElement("li");
    item.innerHTML = `<span class="name${place === 0 ? " first" : ""}"></span><span class="value">${percent(p)}</span>`
      + `<span class="bar"><span style="width:${(100 * p).toFixed(1)}%"></span></span>`;
    item.querySelector(".name").textContent = classes[i];
    return item;
  }));
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b), mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function showLatency(windows) {
  const times = windows.map((w) => w.ms), hopMs = 1000 * demo.config.hop_seconds;
  const middle = median(times);
  $("latency").textContent = `Per-window latency: ${times.at(-1).toFixed(1)} ms (median ${middle.toFixed(1)} ms over `
    + `${times.length} window${times.length === 1 ? "" : "s"}; ${(middle / hopMs * 100).toFixed(1)} % of the `
    + `${demo.config.hop_seconds} s hop)` + (demo.skipped ? `; ${demo.skipped} windows skipped: slower than the hop` : "");
}

function drawTimeline(windows) {
  const canvas = $("timeline"), scale = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * scale); canvas.height = Math.round(height * scale);
  const g = canvas.getContext("2d");
  g.setTransform(scale, 0, 0, scale, 0, 0);
  g.clearRect(0, 0, width, height);
  const left = 40, right = 24, top = 10, bottom = 30, plotW = width - left - right, plotH = height - top - bottom;
  const t0 = windows[0].end, t1 = Math.max(windows.at(-1).end, t0 + demo.config.hop_seconds);
  const x = (t) => left + plotW * (t - t0) / (t1 - t0), y = (p) => top + plotH * (1 - p);
  g.font = "12px system-ui, sans-serif"; g.fillStyle = "#5b6573"; g.strokeStyle = "#e3e8ee"; g.lineWidth = 1;
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    g.beginPath(); g.moveTo(left, y(p)); g.lineTo(left + plotW, y(p)); g.stroke();
    g.textAlign = "right"; g.textBaseline = "middle"; g.fillText(`${100 * p}%`, left - 6, y(p));
  }
  const ticks = 5, span = t1 - t0;
  g.textAlign = "center"; g.textBaseline = "top";
  for (let k = 0; k <= ticks; k++) {
    const t = t0 + span * k / ticks;
    g.fillText(`${t.toFixed(span < 5 ? 1 : 0)} s`, x(t), top + plotH + 8);
  }
  // the classes drawn: those most probable at some window, at most as many as there are colours
  const peaks = demo.card.classes.map((_, i) => [Math.max(...windows.map((w) => w.probabilities[i])), i]);
  const shown = peaks.sort((a, b) => b[0] - a[0]).slice(0, Math.min(COLOURS.length, demo.config.top + 2));
  shown.forEach(([, i], k) => {
    g.strokeStyle = COLOURS[k]; g.fillStyle = COLOURS[k]; g.lineWidth = 2.5; g.beginPath();
    windows.forEach((w, n) => (n ? g.lineTo : g.moveTo).call(g, x(w.end), y(w.probabilities[i])));
    g.stroke();
    if (windows.length === 1) { g.beginPath(); g.arc(x(windows[0].end), y(windows[0].probabilities[i]), 4, 0, 7); g.fill(); }
  });
  $("legend").replaceChildren(...shown.map(([, i], k) => {
    const item = document.createElement("li");
    item.style.setProperty("--swatch", COLOURS[k]);
    item.textContent = demo.card.classes[i];
    return item;
  }));
}

function showWindows(windows, caption) {
  demo.shown = windows;
  showLatency(windows);
  drawTimeline(windows);
  $("timeline-caption").textContent = caption;
}

function describeModel(card, config) {
  const facts = [
    ["File", `${config.model_file} (${(config.model_bytes / 1024).toFixed(1)} kB, SHA-256 ${card.file_sha256.slice(0, 12)}...)`],
    ["Model", `${card.model} (${card.variant}), ${card.precision.toUpperCase()}, published for ${card.runtime}`],
    ["Front end", config.front_end
      ? `log-mel computed in this page (${card.front_end.n_mels} mel bands, FFT ${card.front_end.n_fft}, hop ${card.front_end.hop_length})`
      : `inside the model (raw audio in: ${card.front_end.n_mels} mel bands, FFT ${card.front_end.n_fft}, hop ${card.front_end.hop_length})`],
    ["Window", `${card.front_end.duration} s at ${card.front_end.sample_rate} Hz, a new one every ${config.hop_seconds} s`],
    ["Test accuracy", `${card.metrics.test_accuracy.toFixed(1)} % (95% interval ${card.metrics.ci95[0].toFixed(1)}-`
      + `${card.metrics.ci95[1].toFixed(1)}, n = ${card.metrics.n} test clips; ${card.protocol})`],
    ["Classes", `${card.classes.length}: ${card.classes.join(", ")}`],
    ["Dataset", `${card.dataset.name} (${card.dataset.clips} clips)`],
    ["Latency on its host", `${card.latency.median_ms.toFixed(3)} ms median (${card.latency.runtime}, `
      + `${card.latency.threads} thread, ${card.latency.cpu})`],
  ];
  $("card").replaceChildren(...facts.flatMap(([term, value]) => {
    const dt = document.createElement("dt"), dd = document.createElement("dd");
    dt.textContent = term; dd.textContent = value;
    return [dt, dd];
  }));
  $("model-name").textContent = `${card.model} (${card.variant})`;
  document.title = `edge-audio demo: ${card.model} (${card.variant})`;
  $("footer").textContent = `Written by ${config.written_by}; runs ${config.runtime} in WebAssembly, offline.`;
}

// ---- the microphone ----------------------------------------------------------------------------------------------

function microphoneProblem(error) {  // what a listener is told when getUserMedia fails
  const names = {
    NotAllowedError: "Microphone access was refused. Allow the microphone for this page in the browser's site "
      + "settings and press Listen again, or classify a WAV file instead.",
    SecurityError: "Microphone access was refused. Allow the microphone for this page in the browser's site "
      + "settings and press Listen again, or classify a WAV file instead.",
    NotFoundError: "No microphone was found. Connect one and press Listen again, or classify a WAV file instead.",
    OverconstrainedError: "No microphone was found. Connect one and press Listen again, or classify a WAV file instead.",
    NotReadableError: "The microphone is in use by another program or cannot be read. Close that program and "
      + "press Listen again.",
  };
  return names[error.name] || `The microphone could not be opened (${error.name}: ${error.message}).`;
}

function makeStream(classifier, rate, onWindow) {  // feed it chunks of samples; a window every hop, sample-exact
  const samples = classifier.samples, hop = Math.max(1, Math.round(demo.config.hop_seconds * rate));
  const buffer = new Float32Array(samples);
  let filled = 0, sinceWindow = 0, received = 0, busy = false;
  demo.firstSound = null;  // seconds since Listen at the first non-zero sample (a device may start with silence)
  const push = (chunk) => {
    const take = Math.min(chunk.length, samples - filled);
    buffer.set(chunk.subarray(0, take), filled); filled += take;
    const rest = chunk.subarray(take);
    if (rest.length) { buffer.copyWithin(0, rest.length); buffer.set(rest, samples - rest.length); }
  };
  return (chunk) => {
    if (demo.firstSound === null) {
      const loud = chunk.findIndex((v) => v !== 0);
      if (loud >= 0) demo.firstSound = (received + loud) / rate;
    }
    for (let offset = 0; offset < chunk.length;) {
      const take = Math.min(chunk.length - offset, hop - sinceWindow);
      push(chunk.subarray(offset, offset + take));
      offset += take; sinceWindow += take; received += take;
      if (sinceWindow < hop) continue;
      sinceWindow = 0;
      if (busy) { demo.skipped += 1; continue; }
      busy = true;
      const end = received / rate, window = buffer.slice();  // the window as it is now: up to `samples`, padded at the end
      classifier.classify(window).then((result) => { busy = false; onWindow({ end, ...result }); },
        (error) => { busy = false; complain(`The model failed on a window: ${error.message}`); });
    }
  };
}

async function listen(classifier) {
  $("problem").hidden = true; demo.problem = null;
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    complain("This browser offers no microphone to this page: a page needs https (or localhost) to use one. "
      + "Open it from localhost or over https, or classify a WAV file instead.");
    return;
  }
  let stream;
  try {
    say("Asking for the microphone...");
    stream = await navigator.mediaDevices.getUserMedia(
      { audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false } });
  } catch (error) {
    say("Not listening.");
    complain(microphoneProblem(error));
    return;
  }
  const rate = demo.card.front_end.sample_rate;
  let context, node;
  try {
    context = new AudioContext({ sampleRate: rate });  // the browser resamples the microphone to the model's rate
    await context.audioWorklet.addModule("capture.js");
    node = new AudioWorkletNode(context, "capture");
    context.createMediaStreamSource(stream).connect(node);
    node.connect(context.destination);  // it writes silence; connected, it is pulled every render quantum
  } catch (error) {
    stream.getTracks().forEach((track) => track.stop());
    if (context) context.close();
    say("Not listening.");
    complain(`This browser cannot record at the model's ${rate} Hz (${error.message}); classify a WAV file instead.`);
    return;
  }
  demo.windows = []; demo.skipped = 0;
  const feed = makeStream(classifier, rate, (window) => {
    demo.windows.push(window);
    if (demo.windows.length > MAX_WINDOWS) demo.windows.shift();
    showNow(window.probabilities, demo.firstSound === null ? "(microphone: only silence so far; is it muted?)"
      : "(microphone)");
    showWindows(demo.windows, `Microphone: the last ${demo.windows.length} windows (${demo.card.front_end.duration} s `
      + `each, ending at the time shown since Listen was pressed).`);
  });
  node.port.onmessage = (event) => feed(event.data);
  demo.listening = true;
  say(`Listening: a ${demo.card.front_end.duration} s window every ${demo.config.hop_seconds} s.`);
  $("listen").textContent = "Stop";
  $("listen").onclick = async () => {
    stream.getTracks().forEach((track) => track.stop());
    await context.close();
    demo.listening = false;
    say("Stopped listening.");
    $("listen").textContent = "Listen";
    $("listen").onclick = () => listen(classifier);
  };
}

// ---- a WAV file --------------------------------------------------------------------------------------------------

async function classifyFile(classifier, file) {
  if (demo.listening) await $("listen").onclick();  // Stop: the file's windows take the page
  $("problem").hidden = true; demo.problem = null;
  say(`Reading ${file.name}...`);
  const rate = demo.card.front_end.sample_rate;
  let audio;
  try {  // decoded and resampled to the model's rate by the browser
    audio = await new OfflineAudioContext(1, 1, rate).decodeAudioData(await file.arrayBuffer());
  } catch (error) {
    say("No file classified.");
    complain(`${file.name} is not an audio file this browser can decode (${error.message || error.name}).`);
    return;
  }
  const wave = new Float32Array(audio.length);  // channels averaged, as edge-audio classify does
  for (let c = 0; c < audio.numberOfChannels; c++) {
    audio.getChannelData(c).forEach((v, i) => { wave[i] += v / audio.numberOfChannels; });
  }
  if (wave.length === 0) { complain(`${file.name} holds no samples.`); say("No file classified."); return; }
  // the windows of `edge-audio classify --stream`: every hop from the start, and one more ending at the end
  const samples = classifier.samples, hop = Math.max(1, Math.round(demo.config.hop_seconds * rate));
  const starts = [];
  for (let s = 0; s <= Math.max(wave.length - samples, 0); s += hop) starts.push(s);
  if (starts.at(-1) + samples < wave.length) starts.push(wave.length - samples);
  const windows = [];
  for (const start of starts) {
    const result = await classifier.classify(fitWindow(wave, start, samples));
    windows.push({ end: Math.min(start + samples, wave.length) / rate, start: start / rate, ...result });
  }
  demo.file = { name: file.name, seconds: wave.length / rate, windows };
  const first = windows[0];
  showNow(first.probabilities, `(${file.name}, its first ${demo.card.front_end.duration} s)`);
  showWindows(windows, `${file.name}: ${windows.length} window${windows.length === 1 ? "" : "s"} of `
    + `${demo.card.front_end.duration} s, ${demo.config.hop_seconds} s apart, at their end times.`);
  const [[p, i]] = ranked(first.probabilities);
  say(`${file.name} (${(wave.length / rate).toFixed(2)} s): ${demo.card.classes[i]}, ${percent(p)}.`);
}

function acceptDrops(classifier) {
  const overlay = $("drop-overlay");
  let depth = 0;
  document.addEventListener("dragenter", (event) => { event.preventDefault(); depth += 1; overlay.hidden = false; });
  document.addEventListener("dragleave", () => { depth -= 1; if (depth <= 0) { depth = 0; overlay.hidden = true; } });
  document.addEventListener("dragover", (event) => event.preventDefault());
  document.addEventListener("drop", (event) => {
    event.preventDefault(); depth = 0; overlay.hidden = true;
    const [file] = event.dataTransfer.files;
    if (file) classifyFile(classifier, file);
  });
  $("file").addEventListener("change", () => {
    const [file] = $("file").files;
    if (file) classifyFile(classifier, file);
    $("file").value = "";
  });
}

async function main() {
  try {
    const [card, config] = await Promise.all([fetchJson("card.json"), fetchJson("demo.json")]);
    Object.assign(demo, { card, config });
    describeModel(card, config);
    const classifier = await makeClassifier(card, config);
    acceptDrops(classifier);
    window.addEventListener("resize", () => { if (demo.shown) drawTimeline(demo.shown); });
    $("listen").onclick = () => listen(classifier);
    $("listen").disabled = false;
    demo.ready = true;
    say("Ready: press Listen to classify the microphone, or give a WAV file.");
  } catch (error) {
    complain(`The demo could not start: ${error.message}. Serve this folder over http `
      + "(python -m http.server) and open it from there.");
    say("Not ready.");
  }
}

main();
