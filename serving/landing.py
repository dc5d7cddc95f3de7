"""The page at `/`: what this model is and how to call it, in place of BentoML's Swagger UI.

BentoML's Swagger page shows its own boilerplate and embeds a Google Tag Manager frame: a
request to a third party from a service that may hold medical data and must work
air-gapped. This page is plain HTML with inline CSS: no script, no font, no image, no
request to anywhere (its Content-Security-Policy forbids any, even to this server). Every
value from the spec or the model's metadata is escaped: spec text is data.
`LandingPageMiddleware` answers `GET /` and `HEAD /` only; everything else passes through.
The request examples and curl lines: serving/landing_examples.py.
"""

from __future__ import annotations

import functools
import html
import math
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from serving.landing_examples import curl, request_bodies

if TYPE_CHECKING:
    from serving.model_store import ServedModel

PAGE_PATH = "/"
DEFAULT_BASE_URL = "http://127.0.0.1:3000"
# A Host header is used in the page's curl lines only if it is a plain host[:port]
# (nothing a shell or HTML would read as more than text); else the default address.
SAFE_HOST = re.compile(r"^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$")
# Nothing may be loaded, not even from this server (the favicon is an inline empty data URL).
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
TASKS = {"binary": "binary classification", "multiclass": "multiclass classification",
         "regression": "regression"}


def e(value: Any) -> str:
    """Escaped text of any value (None as an empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _bound(value: float) -> str:
    return f"{value:g}"


def allowed_values(feature: Any) -> str:
    """A feature's range or allowed values, as text."""
    if feature.is_categorical:
        return "one of " + ", ".join(str(v) for v in feature.choices)
    low, high = feature.min, feature.max
    if low is not None and high is not None:
        return f"{_bound(low)} to {_bound(high)}"
    if low is not None:
        return f"at least {_bound(low)}"
    if high is not None:
        return f"at most {_bound(high)}"
    return "any finite number"


def base_url(scope: dict[str, Any]) -> str:
    """This server's address as the client reached it, if the Host header is plain."""
    host = next((v for k, v in scope.get("headers", []) if k.lower() == b"host"), b"")
    try:
        text = host.decode("ascii")
    except UnicodeDecodeError:
        return DEFAULT_BASE_URL
    scheme = scope.get("scheme") if scope.get("scheme") in ("http", "https") else "http"
    return f"{scheme}://{text}" if SAFE_HOST.match(text) else DEFAULT_BASE_URL


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """A table of already escaped cells."""
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _metrics(served: ServedModel, api_key: bool) -> str:
    if api_key:
        return ("<p>Shown on <a href=\"/model_info\">/model_info</a>, which needs the API key "
                "on this server.</p>")
    metrics = served.metadata.get("holdout_metrics") or {}
    if not isinstance(metrics, dict) or not metrics:
        return "<p>None recorded with this model.</p>"
    selected = served.metadata.get("selection_metric") or served.spec.selection_metric
    rows = [[f"<code>{e(name)}</code>" + (" <span class=\"tag\">selection metric</span>"
                                          if name == selected else ""),
             f"<span class=\"num\">{e(_number(value))}</span>"]
            for name, value in metrics.items()]
    return _table(["metric", "hold-out value"], rows, "narrow")


def _features(served: ServedModel) -> str:
    rows = []
    for f in served.spec.features:
        rows.append([f"<code>{e(f.name)}</code>", e(f.type), e(f.unit or ""),
                     e(allowed_values(f)), "yes" if f.missing else "no", e(f.description)])
    return _table(["name", "type", "unit", "range or allowed values", "may be missing",
                   "description"], rows)


def _engineered(served: ServedModel) -> str:
    engineered = served.spec.engineered_features
    if not engineered:
        return ""
    rows = [[f"<code>{e(x.name)}</code>", e(x.kind), e(", ".join(x.inputs)), e(x.description)]
            for x in engineered]
    return ("<h3>Computed inside the pipeline (not sent)</h3>"
            + _table(["name", "kind", "from", "description"], rows))


def render(served: ServedModel, *, base: str = DEFAULT_BASE_URL, api_key: bool = False,
           max_batch_records: int = 1000) -> str:
    """The whole page. `base` must already be a safe URL (see `base_url`)."""
    spec, info = served.spec, served.info()
    task = TASKS.get(spec.task, spec.task)
    if served.classes:
        classes = ", ".join(
            f"<code>{e(c)}</code>" + (" (positive)" if c == spec.target.positive_class else "")
            for c in served.classes)
        target = f"{e(task)} into {len(served.classes)} classes: {classes}"
        answer = ("<code>prediction</code> (the class) and <code>probabilities</code> "
                  "(class &rarr; probability)")
        if spec.task == "binary":
            answer = ("<code>prediction</code> (the class), <code>probabilities</code> "
                      "(class &rarr; probability), <code>probability</code> (of the positive "
                      "class) and <code>risk_level</code> (<code>low</code>, "
                      "<code>medium</code> or <code>high</code>)")
    else:
        unit = f" (unit: {e(spec.target.unit)})" if spec.target.unit else ""
        target = f"{e(task)}: a number{unit}"
        answer = "<code>prediction</code> (the predicted value)"
    facts = [
        ("model", f"<code>{e(served.name)}</code>"),
        ("version", f"<code>{e(served.version or 'unknown')}</code>"),
        ("data set", f"<code>{e(spec.name)}</code>: {e(spec.description)}"),
    ]
    if spec.source.citation:
        facts.append(("source", e(spec.source.citation)))
    facts += [("task", target), ("target", e(spec.target.description))]
    if not api_key:
        facts += [("estimator", e(info.get("candidate") or "unknown")),
                  ("trained at", e(info.get("trained_at") or "unknown")),
                  ("BentoML tag", f"<code>{e(served.tag)}</code>")]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    notes = {
        "/predict": "A flat JSON object of the raw features above; this one is a record "
                    "of the training data.",
        "/predict_batch": f"<code>{{\"records\": [...]}}</code>: 1 to {max_batch_records:,} "
                          "records, answered in order.",
    }
    v2_note = ("KServe / MLServer / Triton V2 REST: one input tensor per feature; outputs "
               "<code>predict</code>" + (" and <code>predict_proba</code>"
                                         if spec.is_classifier else "") + ".")
    call_html = "".join(
        f"<h3>{e(title)} <code class=\"route\">POST {e(path)}</code></h3>"
        f"<p>{notes.get(path, v2_note)}</p><pre>{e(curl(base, path, body, api_key))}</pre>"
        for title, path, body in request_bodies(served, max_batch_records))
    auth = ("<p class=\"note\">This server needs an API key on the prediction and model "
            "routes: set <code>API_KEY</code> in your shell first.</p>" if api_key else "")
    links = [
        ("/docs.json", "the OpenAPI document: every route, field, constraint and answer"),
        ("/model_info", "name, version, MLflow run, metrics and feature schema as JSON"),
        (f"/v2/models/{served.name}", "V2 model metadata (inputs and outputs)"),
        ("/metrics", "Prometheus metrics"),
        ("/readyz", "readiness (200 once the model is loaded)"),
        ("/livez", "liveness"),
    ]
    link_html = "".join(f"<li><a href=\"{e(href)}\"><code>{e(href)}</code></a>: {e(text)}</li>"
                        for href, text in links)
    title = f"{served.name} {served.version}".strip()
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{e(CSP)}">
<meta name="referrer" content="no-referrer">
<link rel="icon" href="data:,">
<title>{e(title)}</title>
<style>{STYLE}</style>
</head>
<body>
<header>
<p class="kicker">model serving &middot; {e(task)}</p>
<h1>{e(served.name)} <span class="version">version {e(served.version or 'unknown')}</span></h1>
<p class="lead">Trained on the data set <strong>{e(spec.name)}</strong>. Answers hold {answer},
<code>model_name</code> and <code>model_version</code>.</p>
</header>
<main>
<div class="top">
<section id="model"><h2>The model</h2><dl>{dl}</dl></section>
<section id="metrics"><h2>Hold-out metrics</h2>{_metrics(served, api_key)}</section>
</div>
<section id="features"><h2>Features ({len(spec.features)})</h2>
<p>Send these, by name. Types are strict (<code>"5"</code> is not a number); unknown fields,
NaN and Infinity are refused with 400 naming the field and the rule.</p>
{_features(served)}{_engineered(served)}</section>
<section id="call"><h2>How to call it</h2>{auth}{call_html}
<h3>More</h3><ul class="links">{link_html}</ul></section>
</main>
<footer>This page loads nothing, from anywhere: no script, font, image or analytics.</footer>
</body>
</html>
"""


STYLE = """
:root { color-scheme: light; --ink: #1d2330; --muted: #5b6475; --line: #d9dee7;
  --accent: #1f5fa8; --bg: #f6f7f9; --code: #eef1f5; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
header { background: #16324f; color: #fff; padding: 28px 40px 22px; }
header h1 { margin: 0 0 6px; font-size: 28px; font-weight: 650; word-break: break-word; }
header .kicker { margin: 0 0 4px; text-transform: uppercase; letter-spacing: .08em;
  font-size: 12px; color: #a9c2dd; }
header .lead { margin: 0; color: #dbe6f2; max-width: 70em; }
header code { background: rgba(255, 255, 255, .14); color: #fff; }
.version { font-size: 16px; font-weight: 500; background: rgba(255, 255, 255, .16);
  border-radius: 4px; padding: 2px 8px; vertical-align: middle; white-space: nowrap; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 40px 24px; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px;
  padding: 4px 24px 18px; margin: 18px 0; }
h2 { font-size: 19px; margin: 16px 0 10px; }
h3 { font-size: 15px; margin: 18px 0 4px; }
p { margin: 6px 0; }
a { color: var(--accent); }
code, pre { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 13px; }
code { background: var(--code); border-radius: 3px; padding: 1px 4px; }
pre { background: #0f1b2a; color: #e6edf5; border-radius: 5px; padding: 12px 14px;
  overflow-x: auto; white-space: pre; margin: 6px 0 4px; line-height: 1.45; }
code.route { font-weight: 600; margin-left: 6px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 18px; margin: 4px 0; }
dt { color: var(--muted); }
dd { margin: 0; }
table { border-collapse: collapse; width: 100%; margin: 8px 0; font-size: 14px; }
table.narrow { width: auto; min-width: 260px; }
th, td { text-align: left; vertical-align: top; padding: 6px 10px;
  border-bottom: 1px solid var(--line); }
th { background: #f0f3f7; font-weight: 600; white-space: nowrap; }
td .num, .num { font-variant-numeric: tabular-nums; }
.tag { font-size: 11px; background: #e3edf8; color: var(--accent); border-radius: 3px;
  padding: 1px 5px; white-space: nowrap; }
.top { display: grid; grid-template-columns: minmax(0, 1fr) auto; gap: 0 18px;
  align-items: start; }
.top section { margin-bottom: 0; }
@media (max-width: 900px) { .top { grid-template-columns: 1fr; } }
.note { background: #fff7e0; border: 1px solid #f0dc9c; border-radius: 4px; padding: 6px 10px; }
ul.links { margin: 6px 0; padding-left: 20px; }
footer { max-width: 1180px; margin: 0 auto; padding: 0 40px 30px; color: var(--muted);
  font-size: 13px; }
"""


class LandingPageMiddleware:
    """Answers GET / and HEAD / with `render`; every other request passes through."""

    def __init__(self, app: Callable[..., Awaitable[None]], *, served: ServedModel,
                 api_key: bool, max_batch_records: int) -> None:
        self.app = app
        self.served = served
        self.api_key = api_key
        self.max_batch_records = max_batch_records

    @functools.lru_cache(maxsize=8)  # noqa: B019 (one middleware per worker, lives as long)
    def page(self, base: str) -> bytes:
        return render(self.served, base=base, api_key=self.api_key,
                      max_batch_records=self.max_batch_records).encode()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if (scope["type"] != "http" or scope["path"] != PAGE_PATH
                or scope["method"] not in ("GET", "HEAD")):
            await self.app(scope, receive, send)
            return
        body = self.page(base_url(scope))
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"content-security-policy", CSP.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-cache"),
        ]})
        await send({"type": "http.response.body",
                    "body": b"" if scope["method"] == "HEAD" else body})
