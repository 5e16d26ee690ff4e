"""Dashboard benchmark: what one live-update tick of the bay overview costs, in the browser
(headless Chromium, Debian's) and on the server, for 24 and 48 chairs.

Each tick (one second) the app updates every chair's numbers as plain text, and every
``SPARKLINE_EVERY`` ticks each chair's 30-minute trend, an inline SVG sparkline (an <img> whose
data URI the server builds with ``dashboard.figures.make_sparkline_svg`` and ``svg_data_uri``). The baseline,
measured in the same browser in the same run, is one plotly graph per chair (as dcc.Graph
draws it, without the mode bar) updated every tick with ``Plotly.extendTraces``, plotly's
cheapest update path. A tick's time runs from the update to the second animation frame
after it (images decoded), so ~33 ms is the floor at 60 frames a second. The ratio is what counts: this
machine is shared and noisy.

    python -m bench.dashboard        prints JSON, writes bench/results/dashboard.json
"""

from __future__ import annotations

import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import plotly
from selenium import webdriver
from selenium.webdriver.chrome.options import Options

from dashboard.figures import make_sparkline_svg, svg_data_uri
from simulators.patient import PatientModel

RESULTS = Path(__file__).parent / "results"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
TICKS = 20
SPARKLINE_EVERY = 5  # ticks (seconds) between sparkline refreshes, as in the app
WINDOW_S = 1800
POINTS = 120


def series(chairs: int) -> list[dict[str, list[float]]]:
    out = []
    for c in range(chairs):
        model = PatientModel(seed=c)
        t = list(range(0, WINDOW_S + TICKS * 5))
        out.append({"t": [float(x) for x in t], "hr": [float(model.sample(x).values["hr"]) for x in t],
                    "spo2": [float(model.sample(x).values["spo2"]) for x in t]})
    return out


def svg_ticks(data: list[dict[str, list[float]]]) -> tuple[list[list[str]], float]:
    """The data URIs the server sends for each tick, and the server's ms per tick."""
    ticks, spent = [], 0.0
    step = WINDOW_S // POINTS
    for k in range(TICKS):
        start = time.perf_counter()
        uris = []
        for d in data:
            lo, hi = k * 5, k * 5 + WINDOW_S
            svg = make_sparkline_svg(d["t"][lo:hi:step], d["hr"][lo:hi:step], width=220, height=56)
            uris.append(svg_data_uri(svg))
        spent += time.perf_counter() - start
        ticks.append(uris)
    return ticks, spent / TICKS * 1000


def page(chairs: int, body_js: str) -> str:
    tiles = "".join(
        f'<div class="tile"><div class="num" id="n{i}">--</div><div class="trend" id="g{i}"></div></div>'
        for i in range(chairs))
    return f"""<!doctype html><html><head><meta charset="utf-8">
<style>body{{margin:0;background:#111;color:#eee;font:16px sans-serif;display:grid;
grid-template-columns:repeat(8,1fr);gap:4px}} .tile{{height:130px;border:1px solid #444}}
.num{{font-size:40px}} .trend{{height:60px}} img{{width:220px;height:56px}}</style>
<script src="file://{PLOTLY_JS}"></script></head><body>{tiles}<script>{body_js}</script></body></html>"""


MEASURE = """
window.bench = async function (ticks, update) {
  const times = [];
  const frame = () => new Promise(r => requestAnimationFrame(() => r()));
  await frame();
  for (let k = 0; k < ticks; k++) {
    const t0 = performance.now();
    await update(k);  // an update may return a promise (images decoded)
    document.body.offsetHeight;  // force style and layout now
    await frame(); await frame();  // and a paint
    times.push(performance.now() - t0);
  }
  return times;
};
"""


def run_browser(driver: webdriver.Chrome, html: str, tick_js: str, args: object) -> list[float]:
    with tempfile.NamedTemporaryFile("w", suffix=".html", delete=False) as fh:
        fh.write(html)
    driver.get(f"file://{fh.name}")
    script = MEASURE + tick_js + "\nconst done = arguments[arguments.length - 1];" \
        "window.bench(%d, window.tick).then(done);" % TICKS
    driver.set_script_timeout(600)
    times = driver.execute_async_script(script, args)
    Path(fh.name).unlink()
    return times


def measure(driver: webdriver.Chrome, chairs: int) -> dict[str, object]:
    data = series(chairs)
    ticks, server_ms = svg_ticks(data)
    svg_html = page(chairs, "".join(
        f'document.getElementById("g{i}").innerHTML = "<img id=\\"i{i}\\">";' for i in range(chairs)))
    svg_times = run_browser(driver, svg_html, """
const uris = arguments[0];
window.tick = k => {
  const decoded = [];
  uris[k].forEach((u, i) => {
    document.getElementById('n' + i).textContent = String(60 + (k + i) %% 40);
    if (k %% %d === 0) {  // as the app: numbers every second, sparklines every few seconds
      const img = document.getElementById('i' + i);
      img.src = u;
      decoded.push(img.decode().catch(() => null));
    }
  });
  return Promise.all(decoded);
};""" % SPARKLINE_EVERY, ticks)

    step = WINDOW_S // POINTS
    init = [{"x": d["t"][:WINDOW_S:step], "y": d["hr"][:WINDOW_S:step]} for d in data]
    plotly_html = page(chairs, """
const init = %s;
init.forEach((d, i) => Plotly.newPlot('g' + i, [{x: d.x, y: d.y, mode: 'lines', line: {width: 1}}],
  {margin: {l: 0, r: 0, t: 0, b: 0}, height: 60, width: 220, xaxis: {visible: false},
   yaxis: {visible: false}, paper_bgcolor: '#111', plot_bgcolor: '#111'},
  {displayModeBar: false, responsive: false}));
""" % json.dumps(init))
    plotly_times = run_browser(driver, plotly_html, """
window.tick = k => { for (let i = 0; i < %d; i++) {
  Plotly.extendTraces('g' + i, {x: [[%d + k * 5]], y: [[60 + (k + i) %% 40]]}, [0], %d);
  document.getElementById('n' + i).textContent = String(60 + (k + i) %% 40);
} };""" % (chairs, WINDOW_S, POINTS), None)
    svg_ms, plotly_ms = statistics.mean(svg_times), statistics.mean(plotly_times)
    return {"chairs": chairs, "app_ms_per_tick": round(svg_ms, 1),
            "app_ms_worst_tick": round(max(svg_times), 1),
            "plotly_graphs_ms_per_tick": round(plotly_ms, 1),
            "plotly_graphs_ms_worst_tick": round(max(plotly_times), 1),
            "app_vs_plotly": round(svg_ms / plotly_ms, 3),
            "server_ms_per_sparkline_refresh": round(server_ms, 2)}


def driver() -> webdriver.Chrome:
    options = Options()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--allow-file-access-from-files", "--window-size=1920,1080"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options)


def main() -> None:
    d = driver()
    try:
        runs = [measure(d, chairs) for chairs in (24, 48)]
    finally:
        d.quit()
    result = {"benchmark": "dashboard", "ticks": TICKS, "trend_points": POINTS,
              "machine": {"python": platform.python_version()},
              "browser": "Debian chromium, headless, software rendering", "runs": runs}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "dashboard.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
