r"""A screenshot of the browser page after it stylized a pair: README's picture.

    python export_savedmodel.py --export_dir=exports/efanet --web
    python -m tools.web_screenshot --web_dir=exports/efanet/web \
        --content=../shared/images/content/brad_pitt.jpg --style=../shared/images/style/la_muse.jpg \
        --output=docs/images/web_page.png

The pair is copied beside a copy of the page, preset by URL with
`autorun=1`, and the screen is captured once the page reports "Done".
"""

from __future__ import annotations

import os

from absl import app, flags

from exchange_st.web import page
from tools import browser

FLAGS = flags.FLAGS
flags.DEFINE_string("web_dir", None, "A folder of `export_savedmodel.py --web`.")
flags.DEFINE_string("content", None, "Content image.")
flags.DEFINE_string("style", None, "Style image.")
flags.DEFINE_float("alpha", 1.0, "Eq. 8's trade-off.")
flags.DEFINE_integer("max_size", 512, "The page's longest side.")
flags.DEFINE_string("output", "docs/images/web_page.png", "The PNG to write.")
flags.DEFINE_list("window", ["1280", "760"], "Browser window width,height.")
flags.mark_flags_as_required(["web_dir", "content", "style"])


def main(argv):
    del argv
    files = {"content": FLAGS.content, "style": FLAGS.style}
    with browser.page_with_files(FLAGS.web_dir, files) as (site, names):
        query = (
            f"content={names['content']}&style={names['style']}&alpha={FLAGS.alpha}"
            f"&max_size={FLAGS.max_size}&autorun=1"
        )
        window = tuple(int(v) for v in FLAGS.window)
        with browser.serve(site) as base, browser.Chromium(window=window) as chromium:
            tab = chromium.open(f"{base}/index.html?{query}")
            status = browser.stylized_status(tab, 1800)
            # The Save link appears when the PNG is encoded, just after "Done".
            tab.wait_for(page.JS_SAVE_READY, 60)
            png = tab.screenshot()
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    with open(FLAGS.output, "wb") as f:
        f.write(png)
    print(f"{status} Screenshot: {FLAGS.output}")


if __name__ == "__main__":
    app.run(main)
