"""The Dagster UI in a real browser, after real runs.

On 127.0.0.1 with a temporary ``DAGSTER_HOME`` and ``PM_HOME`` and four bundled tickers:

1. a year of history (bars, features, targets) is loaded with the documented backfill command;
   the ML models are trained through GraphQL on what was known at its end, then ``nightly_job``
   runs the next session, launched through GraphQL as the UI launches one;
2. headless Chromium (Debian's ``chromium`` and ``chromium-driver``, through Selenium pointed at
   the system binaries: nothing is downloaded) opens the global asset graph, expands every group
   with the UI's own shortcut (⌥E), zooms out until every asset is drawn and checks that every
   asset of the definitions is on it;
3. it opens ``ml/model``'s page: the latest materialization's metrics are in the metadata table
   with the values GraphQL reports, and the feature-importance chart, a PNG embedded as a markdown
   data-URI image, opens and decodes in the browser.

Screenshots (PNG) are saved in the test's ``tmp_path``; the graph's is also copied to
``$PM_HOME/test_outputs/ui_asset_graph.png`` of the calling environment (``make test``: ``.pm/``;
pytest's basetemp when ``PM_HOME`` is unset) and its path printed. Without Chromium the test is
skipped with the reason, except in CI (``CI=true``), where it fails: ``make browser`` (a
dependency of ``make test``) installs the packages.
"""

from __future__ import annotations

import base64
import collections
import os
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.dagster_servers import DagsterServers, pm_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TICKERS = ["AAPL", "MSFT", "JPM", "KO"]
# 252 sessions: two backfill runs, and enough returns for every nightly forecaster (GARCH: 250).
HISTORY = ("2021-12-23", "2022-12-22")
NIGHT = "2022-12-23"
# Horizons whose labels fit the short history; trains in seconds.
TRAINING = {
    "ops": {
        "ml__model": {
            "config": {
                "until": HISTORY[1],
                "horizons": [1, 5, 21],
                "train_years": 0.5,
                "valid_months": 2,
                "n_estimators": 60,
                "importance_repeats": 1,
                "threads": 2,
            }
        }
    }
}
ASSET = ["ml", "model"]
# $PM_HOME as the caller set it (read at import, before the autouse fixture isolates each test).
OUTER_PM_HOME = os.environ.get("PM_HOME")
WAIT = 90  # seconds for the UI to show something, generous for a loaded 2-core machine
WINDOW = (2200, 1600)
# Every node and group box drawn in the graph lies inside the graph's viewport (the element two
# levels above the SVG).
ALL_NODES_INSIDE = """
const nodes = [...document.querySelectorAll('foreignObject')];
if (!nodes.length) return false;
const vp = nodes[0].ownerSVGElement.parentElement.parentElement.getBoundingClientRect();
return nodes.every((n) => { const r = n.getBoundingClientRect();
  return r.left >= vp.left - 1 && r.top >= vp.top - 1 && r.right <= vp.right + 1 && r.bottom <= vp.bottom + 1; });
"""


def _browser_or_skip() -> None:
    """Skip (locally) or fail (in CI) when headless Chromium or Selenium is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[dev]')")
    if not missing:
        return
    reason = (
        f"headless Chromium is not installed: {', '.join(missing)} missing; `make browser` installs "
        "the Debian packages chromium and chromium-driver"
    )
    if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def chromium(profile: Path):
    """Headless Chromium through the system chromedriver; Selenium Manager stays offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ["SE_OFFLINE"] = "true"
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace sandbox
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--disable-extensions",
        "--no-first-run",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


# GraphQL: what the page must show ---------------------------------------------------------------
def asset_nodes(servers: DagsterServers) -> list[dict]:
    data = servers.graphql("{ assetNodes { assetKey { path } groupName } }")
    return data["assetNodes"]


def latest_metadata(servers: DagsterServers, key: list[str]) -> list[dict]:
    data = servers.graphql(
        "query($k: AssetKeyInput!) { assetOrError(assetKey: $k) { __typename ... on Asset { "
        "assetMaterializations(limit: 1) { metadataEntries { label __typename "
        "... on FloatMetadataEntry { floatValue } ... on MarkdownMetadataEntry { mdStr } } } } } }",
        {"k": {"path": key}},
    )
    materializations = data["assetOrError"]["assetMaterializations"]
    assert materializations, f"{'/'.join(key)} has no materialization"
    return materializations[0]["metadataEntries"]


# the browser ---------------------------------------------------------------------------------
def drawn_asset_names(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "[class*='AssetNode_assetName']") if e.text]


def check_asset_graph(driver, url: str, nodes: list[dict], screenshot: Path) -> dict[str, object]:
    """The global asset graph with every group expanded shows every asset; returns what it saw."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    groups = sorted({n["groupName"] for n in nodes})
    expected = collections.Counter(n["assetKey"]["path"][-1] for n in nodes)
    driver.get(f"{url}/asset-groups")
    wait = WebDriverWait(driver, WAIT)
    wait.until(lambda d: "Global asset lineage" in d.find_element(By.TAG_NAME, "body").text)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "[aria-label='zoom_out']"))
    # The graph's own shortcut "Expand all groups" (⌥E); the expanded groups land in the URL.
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.ALT, "e")
    wait.until(lambda d: "expanded=" in d.current_url)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(driver.current_url).query)
    expanded = sorted(g.rsplit(":", 1)[-1] for g in query["expanded"][0].split(","))
    assert expanded == groups, (expanded, groups)
    # Off-screen nodes are not drawn: zoom out until every asset is drawn inside the viewport.
    zoom_out = driver.find_element(By.CSS_SELECTOR, "[aria-label='zoom_out']")
    for _ in range(12):
        seen = collections.Counter(drawn_asset_names(driver))
        inside = driver.execute_script(ALL_NODES_INSIDE)
        if seen == expected and inside:
            break
        zoom_out.click()
        time.sleep(0.5)
    assert seen == expected, f"drawn {sorted(seen.elements())}, expected {sorted(expected.elements())}"
    assert inside, "the graph does not fit the window at the smallest zoom"
    text = body.text
    assert all(g in text for g in groups), (groups, text[:2000])
    driver.save_screenshot(str(screenshot))
    return {"groups": groups, "assets": sorted(seen.elements())}


def check_asset_page(
    driver, url: str, key: list[str], metadata: list[dict], folder: Path
) -> dict[str, object]:
    """The asset's page shows its name, its latest metrics and its embedded PNG chart."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    floats = [e for e in metadata if e["__typename"] == "FloatMetadataEntry" and e["floatValue"] is not None]
    images = [
        e
        for e in metadata
        if e["__typename"] == "MarkdownMetadataEntry" and "data:image/png;base64," in e["mdStr"]
    ]
    assert floats, f"{'/'.join(key)} has no float metric: {metadata}"
    assert images, (
        f"{'/'.join(key)}'s latest materialization embeds no PNG (is matplotlib installed?): "
        f"{[e['label'] for e in metadata]}"
    )
    metric, image = floats[0], images[0]
    driver.get(f"{url}/assets/{'/'.join(key)}")
    wait = WebDriverWait(driver, WAIT)

    def row(label: str):
        return driver.find_element(By.XPATH, f"//tr[td[1][normalize-space()='{label}']]")

    wait.until(lambda d: d.find_elements(By.XPATH, f"//tr[td[1][normalize-space()='{metric['label']}']]"))
    text = driver.find_element(By.TAG_NAME, "body").text
    assert all(part in text for part in key), text[:2000]
    shown = row(metric["label"]).find_elements(By.TAG_NAME, "td")[-1].text.strip()
    assert float(shown) == pytest.approx(metric["floatValue"], rel=1e-9, abs=1e-12), (metric, shown)
    driver.save_screenshot(str(folder / "ui_asset_page.png"))

    # A markdown entry opens in a dialog; the chart must be decoded there, byte for byte.
    row(image["label"]).find_element(By.XPATH, ".//a[normalize-space()='[Show Markdown]']").click()
    in_dialog = ", ".join(
        f"{d} img[src^='data:image/png;base64,']" for d in ("[role='dialog']", ".bp5-dialog")
    )
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, in_dialog))
    img = driver.find_element(By.CSS_SELECTOR, in_dialog)
    wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img))
    width, height = driver.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", img
    )
    src = img.get_attribute("src")
    png = base64.b64decode(src.split(",", 1)[1])
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and width > 100 and height > 100, (width, height)
    assert src.split(",", 1)[1] in image["mdStr"]
    driver.save_screenshot(str(folder / "ui_asset_image.png"))
    return {"metric": metric["label"], "value": shown, "image": image["label"], "png_bytes": len(png)}


def _stable_copy(screenshot: Path, tmp_path_factory) -> Path:
    """A copy where it outlives pytest's rotation of temporary folders."""
    if OUTER_PM_HOME:
        folder = Path(OUTER_PM_HOME) / "test_outputs"
    else:
        folder = tmp_path_factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):
            folder = folder.parent  # one folder for the session, not one per worker
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / screenshot.name
    shutil.copyfile(screenshot, target)
    return target


def test_the_ui_shows_the_graph_and_an_assets_metrics_and_plot(tmp_path, tmp_path_factory):
    _browser_or_skip()
    env = pm_env(tmp_path, TICKERS)
    timings: dict[str, float] = {}
    began = time.monotonic()
    servers = DagsterServers(tmp_path, env)
    # The history first, through the documented command against the instance the servers will
    # use: it also creates the instance's storage, which the daemon and the webserver would
    # otherwise both try to create when they start at once.
    servers.load_history(*HISTORY)
    timings["history"] = time.monotonic() - began
    with servers:
        started = list(servers.processes)
        timings["servers"] = time.monotonic() - began
        assert servers.wait_run(servers.launch_run("ml_training_job", run_config=TRAINING)) == "SUCCESS"
        timings["ml_training_job"] = time.monotonic() - began
        assert servers.wait_run(servers.launch_run("nightly_job", partition=NIGHT)) == "SUCCESS"
        timings["nightly_job"] = time.monotonic() - began
        servers.set_nux_seen()  # the first visit's community dialog would cover the page

        nodes = asset_nodes(servers)
        metadata = latest_metadata(servers, ASSET)
        driver = chromium(tmp_path / "chromium_profile")
        try:
            graph = check_asset_graph(driver, servers.url, nodes, tmp_path / "ui_asset_graph.png")
            page = check_asset_page(driver, servers.url, ASSET, metadata, tmp_path)
        finally:
            driver.quit()
        timings["browser"] = time.monotonic() - began

    for name in ("ui_asset_graph.png", "ui_asset_page.png", "ui_asset_image.png"):
        shot = tmp_path / name
        assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000, name
    stable = _stable_copy(tmp_path / "ui_asset_graph.png", tmp_path_factory)
    print(f"asset graph screenshot: {stable}")
    print(f"saw {graph} and {page}; seconds since start: {timings}")
    assert started and all(proc.poll() is not None for proc in started)
