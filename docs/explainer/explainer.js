// The explainer page: draw a digit, watch LeNet-5 read it.
//
// The drawing is prepared exactly as zoo.preprocess_digit (zoo/data/digit.py) prepares a PNG
// of it, step by step and in float64 as NumPy does, so that the 28x28 input here and there
// agree to within 1/255 per pixel (tests/docs/test_explainer.py checks it). The model is the
// zoo's own ONNX export with feature maps (zoo.export(..., feature_maps=True)), run by
// onnxruntime-web from this site's own copy: nothing is fetched from another host.
(function () {
  "use strict";

  // zoo/data/digit.py's constants, same names.
  const SIZE = 28;
  const BOX = 20;
  const INK_LEVEL = 0.25;
  const MIN_CONTRAST = 0.2;
  const MAX_INK_SHARE = 0.5;
  const MAX_BORDER_INK = 0.2;
  const LUMA = [0.299, 0.587, 0.114];

  const STROKE_WIDTH = 18; // on the 280x280 canvas: about MNIST's stroke once shrunk to 20x20
  const THROTTLE_MS = 80; // at most one prediction this often while drawing
  const TOP = 3; // bars shown

  // ------------------------------------------------------------------ preprocessing
  // An image here is {height, width, data: Float64Array} in row-major order.

  class Refusal extends Error {}

  function image(height, width, data) {
    return { height: height, width: width, data: data || new Float64Array(height * width) };
  }

  // Grey levels in [0, 1]: transparency over white, then RGB by the ITU-R 601 luma weights.
  function greyLevels(imageData) {
    const { width, height, data } = imageData;
    const grey = image(height, width);
    for (let i = 0; i < width * height; i++) {
      const alpha = data[4 * i + 3] / 255;
      let level = 0;
      for (let c = 0; c < 3; c++) {
        level += ((data[4 * i + c] / 255) * alpha + (1 - alpha)) * LUMA[c];
      }
      grey.data[i] = level;
    }
    return grey;
  }

  // The outermost pixels, each once, in NumPy's order (top, bottom, left, right).
  function border(img) {
    const { height, width, data } = img;
    const out = [];
    for (let x = 0; x < width; x++) out.push(data[x]);
    for (let x = 0; x < width; x++) out.push(data[(height - 1) * width + x]);
    for (let y = 1; y < height - 1; y++) out.push(data[y * width]);
    for (let y = 1; y < height - 1; y++) out.push(data[y * width + width - 1]);
    return out;
  }

  // np.median: the middle value, or the mean of the two middle ones.
  function median(values) {
    const sorted = Float64Array.from(values).sort();
    const mid = sorted.length >> 1;
    return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  }

  function share(values, predicate) {
    let count = 0;
    for (const value of values) if (predicate(value)) count++;
    return count / values.length;
  }

  // Ink bright on black, stretched so the brightest ink is 1; refuses what has no digit.
  function lightOnDark(grey) {
    let data = grey.data;
    if (median(border(grey)) > 0.5) data = data.map((v) => 1 - v); // dark ink on paper
    const flipped = image(grey.height, grey.width, data);
    const background = median(border(flipped));
    const ink = image(grey.height, grey.width, data.map((v) => Math.max(v - background, 0)));
    let peak = 0;
    for (const v of ink.data) peak = Math.max(peak, v);
    if (peak < MIN_CONTRAST) throw new Refusal("nothing drawn yet");
    for (let i = 0; i < ink.data.length; i++) ink.data[i] /= peak;
    const isInk = (v) => v >= INK_LEVEL;
    if (share(ink.data, isInk) > MAX_INK_SHARE || share(border(ink), isInk) > MAX_BORDER_INK) {
      throw new Refusal("too much ink: leave some empty space around one digit");
    }
    return ink;
  }

  // The box around the pixels at least INK_LEVEL bright.
  function cropToInk(ink) {
    const { height, width, data } = ink;
    let top = height, bottom = -1, left = width, right = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (data[y * width + x] >= INK_LEVEL) {
          top = Math.min(top, y);
          bottom = Math.max(bottom, y);
          left = Math.min(left, x);
          right = Math.max(right, x);
        }
      }
    }
    const crop = image(bottom - top + 1, right - left + 1);
    for (let y = 0; y < crop.height; y++) {
      for (let x = 0; x < crop.width; x++) {
        crop.data[y * crop.width + x] = data[(top + y) * width + left + x];
      }
    }
    return crop;
  }

  // How much of each input pixel each output pixel covers, rows summing to 1 (a box filter).
  function areaWeights(outSize, inSize) {
    const step = inSize / outSize;
    const weights = [];
    for (let i = 0; i < outSize; i++) {
      const row = new Float64Array(inSize);
      const start = i * step, stop = (i + 1) * step;
      for (let k = Math.floor(start); k < Math.min(inSize, Math.ceil(stop)); k++) {
        row[k] = (Math.min(stop, k + 1) - Math.max(start, k)) / step;
      }
      weights.push(row);
    }
    return weights;
  }

  // Area-average the crop so its longer side is BOX, keeping its aspect ratio.
  function fitIntoBox(crop) {
    const { height, width, data } = crop;
    const scale = BOX / Math.max(height, width);
    const newHeight = Math.max(1, Math.floor(height * scale + 0.5));
    const newWidth = Math.max(1, Math.floor(width * scale + 0.5));
    const rows = areaWeights(newHeight, height);
    const cols = areaWeights(newWidth, width);
    // (rows @ crop) first, as NumPy evaluates rows @ crop @ cols.T
    const tall = image(newHeight, width);
    for (let i = 0; i < newHeight; i++) {
      for (let k = 0; k < height; k++) {
        const w = rows[i][k];
        if (w === 0) continue;
        for (let x = 0; x < width; x++) tall.data[i * width + x] += w * data[k * width + x];
      }
    }
    const fitted = image(newHeight, newWidth);
    for (let i = 0; i < newHeight; i++) {
      for (let j = 0; j < newWidth; j++) {
        let sum = 0;
        for (let x = 0; x < width; x++) sum += tall.data[i * width + x] * cols[j][x];
        fitted.data[i * newWidth + j] = sum;
      }
    }
    return fitted;
  }

  // Paste into a black SIZE x SIZE image with the centre of mass at the centre.
  function centreByMass(fitted) {
    const { height, width, data } = fitted;
    let mass = 0, rowMoment = 0, colMoment = 0;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = data[y * width + x];
        mass += v;
        rowMoment += v * (y + 0.5);
        colMoment += v * (x + 0.5);
      }
    }
    const clamp = (v, high) => Math.min(Math.max(v, 0), high);
    const top = clamp(Math.floor(SIZE / 2 - rowMoment / mass + 0.5), SIZE - height);
    const left = clamp(Math.floor(SIZE / 2 - colMoment / mass + 0.5), SIZE - width);
    const canvas = image(SIZE, SIZE);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        canvas.data[(top + y) * SIZE + left + x] = data[y * width + x];
      }
    }
    return canvas;
  }

  // Every step, as zoo.data.digit.digit_steps; throws Refusal for an image with no digit.
  function digitSteps(imageData) {
    const grey = greyLevels(imageData);
    const ink = lightOnDark(grey);
    const crop = cropToInk(ink);
    const fitted = fitIntoBox(crop);
    return { grey: grey, ink: ink, crop: crop, fitted: fitted, input: centreByMass(fitted) };
  }

  // ------------------------------------------------------------------ pictures

  // Draw levels in [low, high] as greys on `canvas`, one canvas pixel per value.
  function paintLevels(canvas, height, width, level) {
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d");
    const pixels = context.createImageData(width, height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const v = level(y, x);
        if (v === null) continue; // left transparent: the gaps between maps
        const i = 4 * (y * width + x);
        pixels.data[i] = pixels.data[i + 1] = pixels.data[i + 2] = Math.round(255 * v);
        pixels.data[i + 3] = 255;
      }
    }
    context.putImageData(pixels, 0, 0);
  }

  function paintImage(canvas, img) {
    paintLevels(canvas, img.height, img.width, (y, x) => img.data[y * img.width + x]);
  }

  function blank(canvas) {
    canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  }

  // One layer's output (1, H, W, C), channels-last, as a grid of C maps, each scaled to its
  // own range: a map's pattern matters here, not how it compares with its neighbours.
  function paintMaps(canvas, tensor) {
    const [, h, w, c] = tensor.dims;
    const data = tensor.data;
    const columns = Math.ceil(Math.sqrt(c));
    const rows = Math.ceil(c / columns);
    const low = new Float64Array(c).fill(Infinity);
    const high = new Float64Array(c).fill(-Infinity);
    for (let i = 0; i < data.length; i++) {
      low[i % c] = Math.min(low[i % c], data[i]);
      high[i % c] = Math.max(high[i % c], data[i]);
    }
    const tile = (size) => size + 1; // one transparent pixel between maps
    paintLevels(canvas, rows * tile(h) - 1, columns * tile(w) - 1, (y, x) => {
      const row = Math.floor(y / tile(h)), col = Math.floor(x / tile(w));
      const my = y % tile(h), mx = x % tile(w), channel = row * columns + col;
      if (my === h || mx === w || channel >= c) return null;
      const range = high[channel] - low[channel];
      const v = data[(my * w + mx) * c + channel];
      return range > 0 ? (v - low[channel]) / range : 0;
    });
  }

  // ------------------------------------------------------------------ the page

  const page = {};
  let session = null;
  let outputNames = [];

  function setUpDrawing(canvas) {
    // Read back after every stroke: ask for a canvas kept in memory the CPU can read.
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.lineWidth = STROKE_WIDTH;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.strokeStyle = "#000";
    let drawing = false;
    const at = (event) => {
      const box = canvas.getBoundingClientRect();
      return [
        ((event.clientX - box.left) * canvas.width) / box.width,
        ((event.clientY - box.top) * canvas.height) / box.height,
      ];
    };
    canvas.addEventListener("pointerdown", (event) => {
      drawing = true;
      canvas.setPointerCapture(event.pointerId);
      const [x, y] = at(event);
      context.beginPath();
      context.moveTo(x, y);
      context.lineTo(x, y); // a tap leaves a dot
      context.stroke();
      requestUpdate();
    });
    canvas.addEventListener("pointermove", (event) => {
      if (!drawing) return;
      const [x, y] = at(event);
      context.lineTo(x, y);
      context.stroke();
      requestUpdate();
    });
    const stop = () => {
      if (drawing) requestUpdate();
      drawing = false;
    };
    canvas.addEventListener("pointerup", stop);
    canvas.addEventListener("pointercancel", stop);
  }

  // White paper: what preprocess_digit expects of a PNG saved from this canvas.
  function clearDrawing() {
    const context = page.canvas.getContext("2d");
    context.fillStyle = "#fff";
    context.fillRect(0, 0, page.canvas.width, page.canvas.height);
    requestUpdate();
  }

  function showTop(probabilities) {
    const ranked = Array.from(probabilities.keys()).sort(
      (a, b) => probabilities[b] - probabilities[a]
    );
    page.top.replaceChildren(
      ...ranked.slice(0, TOP).map((digit) => {
        const row = document.createElement("div");
        row.className = "zx-bar";
        const percent = (100 * probabilities[digit]).toFixed(1);
        row.innerHTML =
          `<span class="zx-digit">${digit}</span>` +
          `<span class="zx-track"><span class="zx-fill" style="width:${percent}%"></span></span>` +
          `<span class="zx-percent">${percent}%</span>`;
        return row;
      })
    );
    const best = ranked[0];
    page.prediction.textContent = `${best} (${(100 * probabilities[best]).toFixed(0)}% sure)`;
  }

  function showNothing(message) {
    page.prediction.textContent = `Draw a digit: ${message}`;
    page.top.replaceChildren();
    for (const canvas of Object.values(page.steps)) blank(canvas);
    for (const canvas of page.maps.querySelectorAll("canvas")) blank(canvas);
  }

  // One canvas per feature map output, in the export's (the model's layer) order.
  function buildLayerMaps() {
    page.maps.replaceChildren(
      ...outputNames.slice(1).map((name) => {
        const figure = document.createElement("figure");
        const canvas = document.createElement("canvas");
        canvas.dataset.layer = name;
        const caption = document.createElement("figcaption");
        caption.textContent = name;
        figure.append(canvas, caption);
        return figure;
      })
    );
  }

  async function runModel(input) {
    const tensor = new ort.Tensor("float32", Float32Array.from(input), [1, SIZE, SIZE, 1]);
    return session.run({ [session.inputNames[0]]: tensor });
  }

  async function update() {
    const pixels = page.canvas
      .getContext("2d")
      .getImageData(0, 0, page.canvas.width, page.canvas.height);
    let steps;
    try {
      steps = digitSteps(pixels);
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      showNothing(error.message);
      return;
    }
    paintImage(page.steps.ink, steps.ink);
    paintImage(page.steps.crop, steps.crop);
    paintImage(page.steps.input, steps.input);
    if (!session) return; // the steps show while the model still loads
    const outputs = await runModel(steps.input.data);
    showTop(outputs[outputNames[0]].data);
    for (const canvas of page.maps.querySelectorAll("canvas")) {
      paintMaps(canvas, outputs[canvas.dataset.layer]);
    }
  }

  // At most one prediction at a time, and one every THROTTLE_MS while the pen moves; the
  // last stroke is always predicted.
  let running = null;
  let wanted = false;
  let idleWaiters = [];

  function requestUpdate() {
    wanted = true;
    if (!running) running = pump();
  }

  async function pump() {
    while (wanted) {
      wanted = false;
      try {
        await update();
      } catch (error) {
        page.status.textContent = `Something went wrong: ${error.message}`;
        console.error(error);
      }
      await new Promise((done) => setTimeout(done, THROTTLE_MS));
    }
    running = null;
    idleWaiters.forEach((done) => done());
    idleWaiters = [];
  }

  function whenIdle() {
    return running ? new Promise((done) => idleWaiters.push(done)) : Promise.resolve();
  }

  async function loadModel() {
    ort.env.wasm.wasmPaths = new URL("ort/", document.baseURI).href; // this site's copy
    ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which a plain server lacks
    ort.env.logLevel = "error";
    const info = await (await fetch("model.json")).json();
    session = await ort.InferenceSession.create("model.onnx", {
      executionProviders: ["wasm"],
    });
    outputNames = info.outputs;
    buildLayerMaps();
    page.status.textContent =
      `Model: ${info.model} with its “${info.preset}” weights, ` +
      "exported by zoo-export --feature-maps and run in this page by onnxruntime-web.";
    requestUpdate();
  }

  function start() {
    page.canvas = document.getElementById("digit-canvas");
    if (!page.canvas) return;
    page.prediction = document.getElementById("prediction");
    page.top = document.getElementById("top3");
    page.maps = document.getElementById("layer-maps");
    page.status = document.getElementById("model-status");
    page.steps = {
      ink: document.getElementById("step-ink"),
      crop: document.getElementById("step-crop"),
      input: document.getElementById("step-input"),
    };
    setUpDrawing(page.canvas);
    document.getElementById("clear").addEventListener("click", clearDrawing);
    clearDrawing();
    const ready = loadModel();
    ready.catch((error) => {
      page.status.textContent = `The model did not load: ${error.message}`;
      console.error(error);
    });
    // For the tests (tests/docs/test_explainer.py), and for anyone curious in the console.
    window.zooExplainer = {
      ready: ready,
      whenIdle: whenIdle,
      // The 28x28 input for an ImageData, as a flat array; or {refused: message}.
      preprocessImageData(imageData) {
        try {
          return Array.from(digitSteps(imageData).input.data);
        } catch (error) {
          if (error instanceof Refusal) return { refused: error.message };
          throw error;
        }
      },
      // Every output of the model for a flat 28x28 input, as {name: {dims, data}}.
      async run(input) {
        await ready;
        const outputs = await runModel(input);
        const plain = {};
        for (const name of outputNames) {
          plain[name] = { dims: outputs[name].dims, data: Array.from(outputs[name].data) };
        }
        return plain;
      },
    };
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
