"""The learner's view: every lesson opened in JupyterLab in a real (headless) Chromium.

Run by `make test` after nbval (`pytest -m browser tests/test_browser.py`; deselected by default). The
server is started the way `make lab` starts it (the .venv's jupyter, the project's kernel) on loopback
with a free port and no token, over a temporary copy of notebooks/ (so nothing in the checkout is
written), with hermetic settings, and is stopped by its own PID. Screenshots go to artifacts/browser/.

Chromium is Debian's (`make test` installs it as root when /usr/bin/chromium is missing); Playwright is
used as a Python library only. Without a browser the tests skip with the reason, except under CI=true,
where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.prefix) / "bin"  # the .venv this suite runs in (make test: .venv/bin/python -m pytest)
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "artifacts" / "browser"
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
LIVE_LESSON = LESSONS[0] if LESSONS else None  # lesson 01: run live with Run All
# User settings for a clean, deterministic JupyterLab: every cell in the DOM (no virtual scrolling),
# no autosave, no news pop-up, no extension manager reaching out to PyPI.
SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension/plugin.jupyterlab-settings": {"enabled": False},
}
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook on screen
# What an error output looks like once rendered (JupyterLab shows an error as its traceback text, in the same
# element type as stderr): a Python traceback, IPython's "Cell In[3], line 2" header, or a widget that failed.
# A lesson may print an exception's message on purpose ("ValueError: ..."), so that alone is not an error.
# Timeouts are generous, for a slow, loaded 2-core machine: every wait returns as soon as its condition holds,
# so a passing run takes no longer for them.
TIMEOUT_MS = 120_000  # any single wait in the page: a selector, a redraw, a navigation
STARTUP_S = 180  # JupyterLab to answer, a kernel to start and become idle
RUN_ALL_MS = 600_000  # a whole lesson run live (about 25 s when the machine is quiet)
ERROR_PATTERNS = re.compile(
    r"Traceback \(most recent call last\)|^Cell In\[\d+\], line \d+|Error displaying widget", re.MULTILINE
)


def _unavailable(reason: str):
    """Fail under CI (the browser check must run there), skip elsewhere, with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 30.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read())


def _math_cells(cells: list[dict]) -> list[int]:
    """Indices of markdown cells with inline or display math (outside code spans)."""
    found = []
    for i, c in enumerate(cells):
        if c["cell_type"] != "markdown":
            continue
        text = re.sub(r"```.*?```|`[^`\n]*`", "", "".join(c["source"]), flags=re.DOTALL)
        if re.search(r"\$\$.+?\$\$|\$[^$\n]+\$|\\\(.+?\\\)", text, flags=re.DOTALL):
            found.append(i)
    return found


def _image_counts(cells: list[dict]) -> dict[int, int]:
    """Cell index -> number of stored image outputs (png/jpeg/svg)."""
    counts = {}
    for i, c in enumerate(cells):
        n = sum(
            1
            for o in c.get("outputs", [])
            if o["output_type"] in ("display_data", "execute_result")
            and any(m in o.get("data", {}) for m in ("image/png", "image/jpeg", "image/svg+xml"))
        )
        if n:
            counts[i] = n
    return counts


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _stop(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if not _alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def chromium_path() -> str:
    if not CHROMIUM.exists():
        _unavailable(f"no Chromium at {CHROMIUM} (as root: apt-get install -y chromium; `make test` does it)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the Python package playwright is not installed (pip install playwright)")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium_path):
    """A JupyterLab server as `make lab` starts it, over a copy of notebooks/; yields (base_url, root)."""
    jupyter = VENV_BIN / "jupyter"
    if not jupyter.exists():
        _unavailable(f"no jupyter in {VENV_BIN} (run through `make test`)")
    home = tmp_path_factory.mktemp("lab")
    root = home / "notebooks"
    shutil.copytree(ROOT / "notebooks", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = home / "settings"
    for name, value in SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}  # the kernel uses the inline backend
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"),
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    port = _free_port()
    cmd = [
        str(jupyter),
        "lab",
        "--no-browser",
        "--port",
        str(port),
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.ip=127.0.0.1",
        str(root),
    ]
    if os.geteuid() == 0:
        cmd.insert(3, "--allow-root")
    log = open(home / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    server_pid = None
    try:
        deadline = time.monotonic() + STARTUP_S
        while server_pid is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"JupyterLab did not start: {(home / 'server.log').read_text()[-2000:]}")
            for info in (home / "runtime").glob("jpserver-*.json"):
                try:
                    data = json.loads(info.read_text())
                except ValueError:  # still being written
                    continue
                if data.get("port") == port:
                    server_pid = data["pid"]  # the server's own PID, as it records it
            time.sleep(0.3)
        while True:
            try:
                _get_json(f"{base}/api/status")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield base, root, server_pid
    finally:
        pids = [p for p in (server_pid, proc.pid) if p is not None]
        children = _children(pids[0])
        for pid in dict.fromkeys(pids):
            _stop(pid)
        proc.wait(timeout=30)
        for pid in children:  # kernels: the server shuts them down; make sure
            _stop(pid, timeout=5)
        log.close()
        still = [p for p in children + pids if _alive(p)]
        assert not still, f"processes left running: {still}"


def _children(pid: int) -> list[int]:
    import psutil

    try:
        return [c.pid for c in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


@pytest.fixture(scope="module")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, lab):
    """A fresh browser tab; afterwards the kernels it started are shut down (the server keeps running)."""
    base = lab[0]
    context = browser.new_context(viewport={"width": 1300, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    pg.set_default_navigation_timeout(TIMEOUT_MS)
    try:
        yield pg
    finally:
        xsrf = [c["value"] for c in context.cookies() if c["name"] == "_xsrf"]
        for session in _get_json(f"{base}/api/sessions"):
            pg.request.delete(
                f"{base}/api/sessions/{session['id']}",
                headers={"X-XSRFToken": xsrf[0]} if xsrf else {},
                timeout=TIMEOUT_MS,
            )
        context.close()
        assert _get_json(f"{base}/api/sessions") == [], "a kernel outlived its test"


def _open(page, base: str, name: str, n_cells: int) -> None:
    page.goto(f"{base}/lab/tree/{name}?reset")  # ?reset: a fresh workspace, no tabs restored
    page.wait_for_selector(PANEL + " .jp-Notebook .jp-Cell")
    page.wait_for_function(
        "([n, sel]) => document.querySelectorAll(sel).length === n", arg=[n_cells, PANEL + " .jp-Notebook .jp-Cell"]
    )


def _wait_kernel_idle(page, base: str, name: str) -> dict:
    """Until the notebook's kernel is started, connected and idle (an earlier Run All can be lost); its model."""
    deadline = time.monotonic() + STARTUP_S
    while True:
        sessions = [s for s in _get_json(f"{base}/api/sessions") if s["path"].endswith(name)]
        if sessions and sessions[0]["kernel"]["execution_state"] == "idle":
            break
        assert time.monotonic() < deadline, f"kernel never became idle in {STARTUP_S} s: {sessions}"
        time.sleep(0.5)
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']")
    return sessions[0]["kernel"]


def _menu(page, top: str, item: str, tries: int = 3) -> None:
    """Click menu `top`, then its `item`; if the menu did not open (a lost click), close any menu and retry."""
    entry = page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{re.escape(item)}$"))
    for attempt in range(tries):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(top)}$")).click()
        try:
            entry.wait_for(state="visible", timeout=TIMEOUT_MS // 4)
        except Exception:
            if attempt == tries - 1:
                raise
            page.keyboard.press("Escape")
            continue
        entry.click()
        return


PROMPTS = PANEL + " .jp-CodeCell .jp-InputArea-prompt"
STARTED = "sel => [...document.querySelectorAll(sel)].some(e => /^\\[(\\*|\\d+)\\]:$/.test(e.innerText.trim()))"


def _run_all(page, tries: int = 3) -> None:
    """Run > Run All Cells, clicked again only if no prompt shows [*] or a number yet (the click was lost)."""
    for attempt in range(tries):
        _menu(page, "Run", "Run All Cells")
        try:  # JupyterLab marks queued cells [*] at once, before the kernel answers
            page.wait_for_function(STARTED, arg=PROMPTS, timeout=TIMEOUT_MS // 4)
            return
        except Exception:
            if attempt == tries - 1 or page.evaluate(STARTED, PROMPTS):
                raise


RENDER_STATUS = """([math, images]) => {
    const cells = document.querySelectorAll('__PANEL__ .jp-Notebook .jp-Cell');
    const noMath = math.filter(i => !(cells[i] && cells[i].querySelector('mjx-container')));
    const noImages = Object.entries(images).filter(([i, n]) => {
        const imgs = cells[+i] ? [...cells[+i].querySelectorAll('.jp-OutputArea-output img')] : [];
        return !(imgs.length >= n && imgs.every(im => im.complete && im.naturalWidth > 0));
    }).map(([i, n]) => +i);
    return {noMath, noImages};
}""".replace("__PANEL__", PANEL)


def _wait_rendered(page, math: list[int], images: dict[int, int], timeout: float = TIMEOUT_MS) -> None:
    """Until every math cell holds MathJax output and every image-bearing cell shows its loaded images."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    arg = [math, {str(k): v for k, v in images.items()}]
    try:
        page.wait_for_function(
            f"arg => {{ const s = ({RENDER_STATUS})(arg); return !s.noMath.length && !s.noImages.length; }}",
            arg=arg,
            timeout=timeout,
        )
    except PlaywrightTimeout:
        status = page.evaluate(RENDER_STATUS, arg)
        pytest.fail(
            f"not rendered after {timeout / 1000:.0f} s: math missing in cells {status['noMath']}, "
            f"images missing in cells {status['noImages']}",
            pytrace=False,
        )


def _output_texts(page) -> list[str]:
    return page.eval_on_selector_all(PANEL + " .jp-Notebook .jp-OutputArea-output", "els => els.map(e => e.innerText)")


def _screenshots(page, stem: str) -> list[Path]:
    """The top of the lesson, and its first figure scrolled into view."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = [ARTIFACTS / f"{stem}.png"]
    page.screenshot(path=str(shots[0]))
    figure = page.locator(PANEL + " .jp-OutputArea-output img").first
    if figure.count():
        figure.scroll_into_view_if_needed()
        shots.append(ARTIFACTS / f"{stem}_figure.png")
        page.screenshot(path=str(shots[1]))
    return shots


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_lesson_renders_as_stored(lab, page, lesson):
    base, _, _ = lab
    cells = json.loads(lesson.read_text())["cells"]
    math, images = _math_cells(cells), _image_counts(cells)
    _open(page, base, lesson.name, len(cells))
    _wait_rendered(page, math, images)
    n_math = page.locator(PANEL + " mjx-container").count()
    assert n_math >= len(math), f"{n_math} MathJax formulas for {len(math)} cells with math"
    if math:  # no raw TeX left behind in the rendered markdown
        raw = page.eval_on_selector_all(PANEL + " .jp-MarkdownOutput", "els => els.map(e => e.innerText)")
        assert not [t for t in raw if re.search(r"\\(frac|sum|alpha|sqrt|top)\b", t)], "unrendered TeX"
    n_img = page.locator(PANEL + " .jp-OutputArea-output img").count()
    assert n_img >= sum(images.values())
    errors = [t[:200] for t in _output_texts(page) if ERROR_PATTERNS.search(t)]
    assert not errors, f"error output shown: {errors}"
    for shot in _screenshots(page, lesson.stem):
        assert shot.stat().st_size > 10_000


@pytest.mark.skipif(LIVE_LESSON is None, reason="no lesson in notebooks/ yet")
def test_lesson_runs_live(lab, page):
    """Clear every output, Run All, and watch each prompt get its number with no error on the way."""
    import psutil

    base, _, server_pid = lab
    cells = json.loads(LIVE_LESSON.read_text())["cells"]
    n_code = sum(1 for c in cells if c["cell_type"] == "code")
    _open(page, base, LIVE_LESSON.name, len(cells))
    # the kernel must be connected and idle before Run All (an early click can be lost)
    kernel = _wait_kernel_idle(page, base, LIVE_LESSON.name)
    assert kernel["name"] in ("python3", "self-attention-course")
    kernels = [p for p in psutil.Process(server_pid).children(recursive=True) if "ipykernel" in " ".join(p.cmdline())]
    assert kernels and all(Path(p.cmdline()[0]).parent == VENV_BIN for p in kernels), "not the project's kernel"
    _menu(page, "Edit", "Clear Outputs of All Cells")
    page.wait_for_function("sel => document.querySelectorAll(sel).length === 0", arg=PANEL + " .jp-OutputArea-output")
    prompts = PROMPTS
    assert all(t.strip() in ("[ ]:", "") for t in page.locator(prompts).all_inner_texts())
    started = time.monotonic()
    _run_all(page)
    page.wait_for_function(
        "([n, sel]) => { const p = [...document.querySelectorAll(sel)].map(e => e.innerText.trim());"
        "                return p.length === n && p.every(t => /^\\[\\d+\\]:$/.test(t)); }",
        arg=[n_code, prompts],
        timeout=RUN_ALL_MS,
    )
    seconds = time.monotonic() - started
    numbers = [int(t.strip()[1:-2]) for t in page.locator(prompts).all_inner_texts()]
    assert numbers == list(range(1, n_code + 1)), f"prompts {numbers}: not one fresh run top to bottom"
    errors = [t[:300] for t in _output_texts(page) if ERROR_PATTERNS.search(t)]
    assert not errors, f"error output during Run All: {errors}"
    _wait_rendered(page, _math_cells(cells), _image_counts(cells))
    shots = _screenshots(page, f"{LIVE_LESSON.stem}_live")
    assert all(s.stat().st_size > 10_000 for s in shots)
    print(f"{LIVE_LESSON.name}: Run All took {seconds:.1f} s in the browser")


def _run_all_when_idle(page, base: str, name: str) -> None:
    _wait_kernel_idle(page, base, name)
    _run_all(page)


def test_attention_explorer_widgets_work_live(lab, page):
    """In JupyterLab the explorer shows its controls, and each control redraws the figure."""
    import nbformat

    base, root, _ = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import course_utils as cu\ncu.explorer.explore()")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "explorer_live.ipynb")
    _open(page, base, "explorer_live.ipynb", 1)
    _run_all_when_idle(page, base, "explorer_live.ipynb")
    figure = page.locator(PANEL + " .jupyter-widgets .widget-output img")
    figure.wait_for()
    query = page.locator(PANEL + " .widget-dropdown select").first
    assert query.locator("option").count() == 10
    sources = [figure.get_attribute("src")]

    def changed() -> None:
        """Until the figure is redrawn (a round trip to the kernel: slow on a loaded machine)."""
        page.wait_for_function(
            "([sel, old]) => { const im = document.querySelector(sel); return im && im.src !== old && im.complete; }",
            arg=[PANEL + " .jupyter-widgets .widget-output img", sources[-1]],
            timeout=TIMEOUT_MS,
        )
        sources.append(figure.get_attribute("src"))

    query.select_option(label="7: it")
    assert query.evaluate("s => s.selectedIndex") == 7  # (the label's space is a no-break space in the DOM)
    changed()
    causal = page.locator(PANEL + " .widget-toggle-buttons button", has_text=re.compile("^causal$"))
    for attempt in range(3):  # a click can be lost while the page is busy: click again until the button is on
        causal.click()
        try:
            page.wait_for_function(
                "b => b.classList.contains('mod-active')", arg=causal.element_handle(), timeout=10_000
            )
            break
        except Exception:
            if attempt == 2:
                raise
    changed()
    page.locator(PANEL + " .widget-checkbox input").uncheck()  # "scale by 1/√d": clicks until unchecked
    changed()
    assert len(set(sources)) == 4
    errors = [t[:300] for t in _output_texts(page) if ERROR_PATTERNS.search(t)]
    assert not errors, f"error output from the explorer: {errors}"
    _screenshots(page, "explorer_live")


def test_model_explorer_works_live(lab, page):
    """The explorer's model mode (lesson 12): type a sentence, pick a layer, and the trained model's heads redraw."""
    import nbformat

    base, root, _ = lab
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            'import course_utils as cu\ncu.explorer.explore(model="shakespeare", text="Hamlet, Hamlet")'
        )
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nbformat.write(nb, root / "model_explorer_live.ipynb")
    _open(page, base, "model_explorer_live.ipynb", 1)
    _run_all_when_idle(page, base, "model_explorer_live.ipynb")
    image = PANEL + " .jupyter-widgets .widget-output img"
    figure = page.locator(image)
    figure.wait_for(timeout=TIMEOUT_MS)
    sources = [figure.get_attribute("src")]

    def changed() -> None:
        page.wait_for_function(
            "([sel, old]) => { const im = document.querySelector(sel); return im && im.src !== old && im.complete; }",
            arg=[image, sources[-1]],
            timeout=TIMEOUT_MS,
        )
        sources.append(figure.get_attribute("src"))

    box = page.locator(PANEL + " .widget-text input").first
    box.fill("VIOLA.\nWho governs here?")  # a newline in a one-line input is dropped by the browser
    box.press("Enter")
    changed()
    message = page.locator(PANEL + " .widget-html").first
    page.wait_for_function("el => el.innerText.startsWith('query')", arg=message.element_handle(), timeout=TIMEOUT_MS)
    layer = page.locator(PANEL + " .widget-dropdown select").first
    assert [o.inner_text() for o in layer.locator("option").all()] == ["all", "0", "1"]
    layer.select_option(label="1")
    changed()
    box.fill("café")  # a character the model does not know: refused in words, the figure stays
    box.press("Enter")
    page.wait_for_function(
        "el => el.innerText.includes('does not know')", arg=message.element_handle(), timeout=TIMEOUT_MS
    )
    assert figure.get_attribute("src") == sources[-1]
    assert len(set(sources)) == 3
    errors = [t[:300] for t in _output_texts(page) if ERROR_PATTERNS.search(t)]
    assert not errors, f"error output from the model explorer: {errors}"
    _screenshots(page, "model_explorer_live")
