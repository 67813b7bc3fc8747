"""Builds the browser page: static files, the ONNX model, and ONNX Runtime Web vendored.

A built folder works offline from any static server (`python -m
http.server -d <folder>`): nothing is fetched from a CDN. The JavaScript
comes from the npm registry once, as `static/package-lock.json` pins it,
into a cache keyed by that lockfile; each build copies the three files the
page loads from it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
PAGE_FILES = ("index.html", "app.js", "style.css")
# ONNX Runtime Web's WebAssembly build: the loader, its module and the binary.
VENDOR_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
VENDOR_PACKAGE = "onnxruntime-web"
# The page's state as a driver reads it (tests/test_web.py, bench.web,
# tools.web_screenshot): JavaScript expressions over app.js's document.
JS_READY = "document.body.dataset.state === 'ready'"
JS_FINISHED = "['done', 'error'].includes(document.body.dataset.state)"
JS_STATUS = "document.getElementById('status').textContent"
JS_SAVE_READY = "document.getElementById('save').href.startsWith('blob:')"
MODEL_FILE = "model.onnx"
INFO_FILE = "model.json"


class WebBuildError(RuntimeError):
    """The page cannot be built here (no npm, or the install failed); says what to do."""


def cache_dir():
    """Where the pinned npm packages are installed: `$EXCHANGE_ST_CACHE` or ~/.cache/exchange_st."""
    root = os.environ.get("EXCHANGE_ST_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "exchange_st"
    )
    with open(os.path.join(STATIC, "package-lock.json"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:16]
    return os.path.join(root, f"npm-{digest}")


def vendored_dist(log=print):
    """The `dist/` folder of the pinned `onnxruntime-web`, installed with `npm ci` if needed."""
    root = cache_dir()
    dist = os.path.join(root, "node_modules", VENDOR_PACKAGE, "dist")
    if all(os.path.isfile(os.path.join(dist, name)) for name in VENDOR_FILES):
        return dist
    npm = shutil.which("npm")
    if npm is None:
        raise WebBuildError(
            f"The web page vendors {VENDOR_PACKAGE} from the npm registry, and npm is not "
            "installed: install Node.js with npm (e.g. `apt install npm`) and rerun."
        )
    os.makedirs(root, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy(os.path.join(STATIC, name), root)
    log(f"Installing {VENDOR_PACKAGE} as package-lock.json pins it, into {root}")
    # --ignore-scripts: the page needs the published files, not install hooks.
    proc = subprocess.run(
        [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0 or not os.path.isdir(dist):
        raise WebBuildError(
            f"`npm ci` in {root} failed (exit {proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-600:]}"
        )
    return dist


def build(web_dir, onnx_path, info, log=print):
    """Writes the page into `web_dir`: page files, `vendor/`, the model and its `model.json`.

    Args:
      web_dir: output folder (created; its page files are overwritten).
      onnx_path: the model of `onnx_export.convert`; moved or copied to
        `web_dir/model.onnx`.
      info: what the page shows about the model (name, step, ...), written
        to `model.json` with the model file's name and size.
      log: progress lines.

    Returns:
      The path of the page's `index.html`.
    """
    dist = vendored_dist(log)
    vendor = os.path.join(web_dir, "vendor")
    os.makedirs(vendor, exist_ok=True)
    for name in PAGE_FILES:
        shutil.copy(os.path.join(STATIC, name), web_dir)
    for name in VENDOR_FILES:
        shutil.copy(os.path.join(dist, name), vendor)
    license_file = os.path.join(os.path.dirname(dist), "LICENSE")
    if os.path.isfile(license_file):
        shutil.copy(license_file, os.path.join(vendor, f"{VENDOR_PACKAGE}.LICENSE"))
    model = os.path.join(web_dir, MODEL_FILE)
    if os.path.abspath(onnx_path) != os.path.abspath(model):
        shutil.copy(onnx_path, model)
    with open(os.path.join(web_dir, INFO_FILE), "w") as f:
        json.dump(dict(info, model=MODEL_FILE, bytes=os.path.getsize(model)), f, indent=2)
    return os.path.join(web_dir, "index.html")
