// The page's logic: load model.onnx with a progress bar, stylize the chosen
// pair with ONNX Runtime Web (WebAssembly), show and save the result.
//
// URL parameters preset the page (a shareable demo, and how the test drives
// it): ?content=URL&style=URL&alpha=0.7&max_size=512&autorun=1

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const ort = globalThis.ort;
const MIN_SIDE = 16; // the model's smallest input side

let session = null;
const images = { content: null, style: null };

function setState(state, message, fraction) {
  document.body.dataset.state = state;
  $("status").textContent = message;
  const bar = $("progress");
  if (fraction === undefined) bar.removeAttribute("value");
  else bar.value = fraction;
  $("run").disabled = !(session && images.content && images.style) || state === "running";
}

async function fetchWithProgress(url, expectedBytes, onProgress) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get("Content-Length")) || expectedBytes || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let received = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    received += value.length;
    onProgress(received, total);
  }
  const bytes = new Uint8Array(received);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

async function loadModel() {
  const info = await (await fetch("model.json")).json();
  if (info.name) $("model-name").textContent = `Model: ${info.name}.`;
  const mb = (n) => (n / 1e6).toFixed(1);
  const bytes = await fetchWithProgress(info.model, info.bytes, (got, total) =>
    setState("loading", `Downloading the model: ${mb(got)} of ${mb(total)} MB`, total ? got / total : undefined));
  setState("loading", "Preparing the model…");
  ort.env.wasm.wasmPaths = new URL("vendor/", location.href).href;
  // Threads need a cross-origin-isolated page (COOP/COEP headers), which a
  // plain static server does not send: one thread then.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`cannot read ${src} as an image`));
    img.src = src;
  });
}

// Longest side capped at maxSize (never enlarged), aspect ratio kept.
function fittedSize(width, height, maxSize) {
  const scale = Math.min(1, maxSize / Math.max(width, height));
  return [Math.max(MIN_SIDE, Math.round(width * scale)), Math.max(MIN_SIDE, Math.round(height * scale))];
}

// An image as a float32 [1, H, W, 3] tensor in [0, 1].
function toTensor(img, maxSize) {
  const [w, h] = fittedSize(img.naturalWidth, img.naturalHeight, maxSize);
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(img, 0, 0, w, h);
  const rgba = ctx.getImageData(0, 0, w, h).data;
  const data = new Float32Array(w * h * 3);
  for (let i = 0, j = 0; i < rgba.length; i += 4, j += 3) {
    data[j] = rgba[i] / 255; data[j + 1] = rgba[i + 1] / 255; data[j + 2] = rgba[i + 2] / 255;
  }
  return new ort.Tensor("float32", data, [1, h, w, 3]);
}

function drawResult(tensor) {
  const [, h, w] = tensor.dims;
  const canvas = $("result");
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const src = tensor.data;
  for (let i = 0, j = 0; j < src.length; i += 4, j += 3) {
    for (let c = 0; c < 3; c++) image.data[i + c] = Math.round(Math.min(1, Math.max(0, src[j + c])) * 255);
    image.data[i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

async function stylize() {
  const maxSize = Number($("max-size").value);
  const alpha = Number($("alpha").value);
  setState("running", "Stylizing…");
  // Let the status paint before the (blocking) WebAssembly run starts.
  await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
  const start = performance.now();
  const content = toTensor(images.content, maxSize);
  const feeds = {
    content,
    style: toTensor(images.style, maxSize),
    alpha: new ort.Tensor("float32", new Float32Array([alpha]), []),
  };
  const { stylized } = await session.run(feeds);
  drawResult(stylized);
  const [, h, w] = content.dims;
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  $("result").toBlob((blob) => {
    const link = $("save");
    if (link.href) URL.revokeObjectURL(link.href);
    link.href = URL.createObjectURL(blob);
    link.hidden = false;
  }, "image/png");
  setState("done", `Done: ${w}×${h} px, α ${alpha.toFixed(2)}, in ${seconds} s.`);
}

async function setImage(which, src) {
  images[which] = await loadImage(src);
  $(`${which}-preview`).src = src;
}

function fail(error) {
  console.error(error);
  setState("error", `Error: ${error.message || error}`);
}

function bind() {
  for (const which of ["content", "style"]) {
    $(`${which}-file`).addEventListener("change", (event) => {
      const file = event.target.files[0];
      if (!file) return;
      setImage(which, URL.createObjectURL(file))
        .then(() => setState(session ? "ready" : "loading", session ? "Ready." : $("status").textContent))
        .catch(fail);
    });
  }
  $("alpha").addEventListener("input", () => { $("alpha-value").textContent = Number($("alpha").value).toFixed(2); });
  $("run").addEventListener("click", () => stylize().catch(fail));
}

async function main() {
  bind();
  if (params.has("alpha")) { $("alpha").value = params.get("alpha"); $("alpha").dispatchEvent(new Event("input")); }
  if (params.has("max_size")) {
    const value = params.get("max_size");
    if (![...$("max-size").options].some((o) => o.value === value)) $("max-size").add(new Option(`${value} px`, value));
    $("max-size").value = value;
  }
  const presets = ["content", "style"].filter((w) => params.has(w)).map((w) => setImage(w, params.get(w)));
  await Promise.all([loadModel(), ...presets]);
  setState("ready", images.content && images.style ? "Ready." : "Ready: choose a photo and a style image.");
  if (params.get("autorun") === "1" && images.content && images.style) await stylize();
}

main().catch(fail);
