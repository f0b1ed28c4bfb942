"""Screenshot the browser demo of a published model while it listens to recorded clips: headless Chromium's fake
microphone plays the clips one after another, in a loop, and the page is shot at a desktop width (1400 px) and a
phone width (400 px) once it has heard them all.

    python scripts/demo_screenshots.py MODEL CLIP [CLIP ...] [--out book/reference] [--hop 0.5]

Writes ``<out>/demo_1400.png`` and ``<out>/demo_400.png`` (the Reference's *The browser demo* shows them) and prints
the page's windows: when each ended and its top class.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_audio.browser import Browser, serve
from edge_audio.classify import Classifier
from edge_audio.demo import write_demo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("clips", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, default=Path("book/reference"))
    parser.add_argument("--hop", type=float, default=0.5)
    args = parser.parse_args()
    classifier = Classifier.load(args.model)
    with tempfile.TemporaryDirectory() as scratch:
        recording = Path(scratch) / "microphone.wav"  # 16-bit PCM: what Chromium's fake device plays
        wave = np.concatenate([classifier.window(classifier.read(clip)) for clip in args.clips])
        sf.write(recording, wave, classifier.config.sample_rate, subtype="PCM_16")
        demo = write_demo(args.model, Path(scratch) / "demo", args.hop, 3).folder
        flags = ("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-audio-capture={recording}", "--autoplay-policy=no-user-gesture-required")
        seconds = wave.size / classifier.config.sample_rate
        with serve(demo) as url, Browser(flags, timeout=60) as browser:
            browser.set_width(1400)
            browser.open(url)
            browser.wait_for("window.demo.ready || window.demo.problem")
            browser.evaluate("document.getElementById('listen').click()", user_gesture=True)
            browser.wait_for(f"window.demo.problem || (window.demo.firstSound !== null && window.demo.windows.length "
                             f"&& window.demo.windows.at(-1).end >= window.demo.firstSound + {seconds + 1})",
                             timeout=seconds + 30)
            if problem := browser.evaluate("window.demo.problem"):
                sys.exit(problem)
            for window in browser.evaluate("window.demo.windows"):
                top = int(np.argmax(window["probabilities"]))
                print(f"{window['end']:6.2f} s  {classifier.card['classes'][top]} "
                      f"{window['probabilities'][top]:.2f}  {window['ms']:.1f} ms")
            args.out.mkdir(parents=True, exist_ok=True)
            for width in (1400, 400):
                print(browser.screenshot(args.out / f"demo_{width}.png", width))


if __name__ == "__main__":
    main()
