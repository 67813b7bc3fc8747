r"""Time per stylization of the browser page in headless Chromium, as a user waits for it.

    python export_savedmodel.py --export_dir=exports/efanet --web
    python -m bench.web --web_dir=exports/efanet/web --content=../shared/images/content/brad_pitt.jpg \
        --style=../shared/images/style/la_muse.jpg --sizes=256,512 --rounds=3

The page is opened with the pair preset by URL (`tools.browser`); for each
round and each size (the page's "longest side", interleaved) the bench
selects the size, clicks Stylize and reads the seconds the page reports
(reading the pixels, ONNX Runtime Web's run on one WebAssembly thread, drawing
the result). A first run at the smallest size warms up and is not counted.
It prints the median and spread per size, the model's load time and what the
page downloads (model + vendored runtime), and writes them to `--output`.
"""

from __future__ import annotations

import json
import os
import re
import statistics

from absl import app, flags

from exchange_st.web import page
from tools import browser

FLAGS = flags.FLAGS
flags.DEFINE_string("web_dir", None, "A folder of `export_savedmodel.py --web`.")
flags.DEFINE_string("content", None, "Content image (any format the browser reads).")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_list("sizes", ["256", "512"], "Longest sides to time.")
flags.DEFINE_integer("rounds", 3, "Interleaved rounds per size.")
flags.DEFINE_string("output", None, "Write the results as JSON here.")
flags.mark_flags_as_required(["web_dir", "content", "style"])

_SECONDS = re.compile(r"in ([0-9.]+) s")


def download_bytes(web_dir):
    """`{path: bytes}` of what the page fetches besides its own small files."""
    files = [page.MODEL_FILE] + [f"vendor/{name}" for name in page.VENDOR_FILES]
    return {f: os.path.getsize(os.path.join(web_dir, f)) for f in files}


def time_sizes(web_dir, content, style, sizes, rounds, log=print):
    """`{"load_s", "seconds": {size: [per round]}}` of the page on one (content, style) pair."""
    files = {"bench_content": content, "bench_style": style}
    with browser.page_with_files(web_dir, files) as (site, names):
        with browser.serve(site) as base, browser.Chromium() as chromium:
            query = f"content={names['bench_content']}&style={names['bench_style']}"
            tab = chromium.open(f"{base}/index.html?{query}")
            tab.wait_for(page.JS_READY, timeout=600)
            load_s = tab.evaluate("performance.now() / 1000")

            def run(size):
                tab.evaluate(
                    f"""(() => {{
                      const s = document.getElementById('max-size');
                      if (![...s.options].some((o) => o.value === '{size}')) s.add(new Option('{size}', '{size}'));
                      s.value = '{size}';
                      document.getElementById('run').click();
                    }})()"""
                )
                status = browser.stylized_status(tab, 1800)
                return float(_SECONDS.search(status).group(1))

            run(min(sizes))
            seconds = {size: [] for size in sizes}
            for r in range(rounds):
                for size in sizes:
                    seconds[size].append(run(size))
                    log(f"round {r + 1}: {size} px {seconds[size][-1]:.1f} s")
    return {"load_s": load_s, "seconds": seconds}


def main(argv):
    del argv
    sizes = [int(s) for s in FLAGS.sizes]
    result = time_sizes(FLAGS.web_dir, FLAGS.content, FLAGS.style, sizes, FLAGS.rounds)
    downloads = download_bytes(FLAGS.web_dir)
    print(f"Page ready (model downloaded and prepared) after {result['load_s']:.1f} s")
    print(
        f"Download: {sum(downloads.values()) / 1e6:.1f} MB ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in downloads.items())})"
    )
    for size, values in result["seconds"].items():
        print(
            f"{size} px: median {statistics.median(values):.1f} s "
            f"(min {min(values):.1f}, max {max(values):.1f}, {len(values)} rounds)"
        )
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            json.dump(dict(result, downloads=downloads), f, indent=2)


if __name__ == "__main__":
    app.run(main)
