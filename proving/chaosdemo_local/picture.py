"""A page as a picture: headless Chromium (Debian's ``chromium``) renders HTML to a PNG, and the PNG is read back.

The report page's test renders a real demo's page this way and checks what the picture shows (the lanes'
colours, where the bars start and end), not only the HTML text; the kind suite makes README's picture with it.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["Box", "ChromiumMissing", "boxes", "screenshot"]

Box = tuple[int, int, int, int]  # left, top, right, bottom (inclusive) of the pixels of one colour


class ChromiumMissing(RuntimeError):
    """No chromium on this machine (.ci/run installs Debian's)."""


def screenshot(html: str, out: Path, width: int = 1000, height: int = 1100) -> Path:
    """``html`` rendered by headless Chromium into ``out`` (PNG), at one pixel per CSS pixel."""
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        raise ChromiumMissing("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(prefix="chaosdemo-page-") as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(html)
        done = subprocess.run([binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                               "--force-device-scale-factor=1", f"--user-data-dir={tmp}/profile",
                               f"--window-size={width},{height}", f"--screenshot={out}", page.as_uri()],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"chromium could not render the page ({done.returncode}): {done.stderr[-800:]}")
    return out


def boxes(png: Path, colors: dict[str, str]) -> dict[str, list[Box]]:
    """For each named colour (#rrggbb), the boxes of its pixels, one per run of rows it fills (a lane's bar)."""
    from PIL import Image  # the test tools' Pillow

    img = Image.open(png).convert("RGB")
    want = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)): name for name, c in colors.items()}
    rows: dict[str, dict[int, tuple[int, int]]] = {name: {} for name in colors}
    w, h = img.size
    px = img.load()
    assert px is not None
    for y in range(h):
        for x in range(w):
            name = want.get(px[x, y])  # type: ignore[arg-type]
            if name is not None:
                lo, hi = rows[name].get(y, (x, x))
                rows[name][y] = (min(lo, x), max(hi, x))
    out: dict[str, list[Box]] = {}
    for name, by_row in rows.items():
        found: list[Box] = []
        for y in sorted(by_row):
            lo, hi = by_row[y]
            last = found[-1] if found else None
            if last is not None and last[3] == y - 1 and abs(last[0] - lo) <= 3 and abs(last[2] - hi) <= 3:
                found[-1] = (min(last[0], lo), last[1], max(last[2], hi), y)
            else:
                found.append((lo, y, hi, y))
        out[name] = [b for b in found if b[3] - b[1] >= 8]  # a bar is 16 px high; text is not one colour
    return out
