#!/usr/bin/env python3
"""Check the Grafana dashboard and the alert rules against running hubs and Prometheus.

    scripts/check-dashboards.py --prometheus http://127.0.0.1:9090 \\
        --metrics http://127.0.0.1:8081/metrics --metrics http://127.0.0.1:8082/metrics \\
        [--dashboard deploy/grafana/dashboards/dropwire.json] \\
        [--rules deploy/prometheus/alerts.yml] [--wait-s 60] [--var name=value]
    scripts/check-dashboards.py --self-test

Every PromQL expression of the dashboard (each panel target's `expr`, rows and nested
panels included, and the metric of each `label_values(...)` variable) and of the rules
file (each `expr:`) is checked:

  (a) every metric name it mentions must be in the hubs' /metrics exposition (a
      histogram's `_bucket`, `_sum` and `_count` series count as exported) or be one
      Prometheus makes itself (`up`, `scrape_*`);
  (b) a dashboard expression must return at least one series from Prometheus now
      (`--wait-s N` retries empty answers until N seconds have passed: rate() needs a
      few scrapes). Rule expressions are only sent to Prometheus to be parsed: an alert
      is meant to return nothing.

Dashboard variables are replaced before querying: `$__rate_interval`, `$__interval` and
`$__range` by durations, any other `$name`, `${name}`, `${name:fmt}` or `[[name]]` by
the variable's "All" value (`allValue`, else `.*`), or by `--var name=value`.

One line per expression, a summary, and exit status 1 on any failure. Python 3 stdlib only.
"""

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DASHBOARD = "deploy/grafana/dashboards/dropwire.json"
DEFAULT_RULES = "deploy/prometheus/alerts.yml"

# --- PromQL: metric names -----------------------------------------------------------

# Prometheus 2.42's functions (plus a few later ones, harmless to know).
FUNCTIONS = set("""
abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time ceil changes
clamp clamp_max clamp_min cos cosh count_over_time day_of_month day_of_week day_of_year
days_in_month deg delta deriv exp floor histogram_avg histogram_count histogram_fraction
histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters hour
idelta increase irate label_join label_replace last_over_time ln log10 log2
mad_over_time max_over_time min_over_time minute month pi predict_linear
present_over_time quantile_over_time rad rate resets round scalar sgn sin sinh sort
sort_desc sqrt stddev_over_time stdvar_over_time sum_over_time tan tanh time timestamp
vector year start end
""".split())
AGGREGATORS = set("""
sum min max avg group stddev stdvar count count_values bottomk topk quantile limitk
limit_ratio
""".split())
# Binary operators and modifiers written as words (PromQL keywords are case-insensitive).
KEYWORDS = set("and or unless atan2 bool offset by without on ignoring group_left group_right".split())
# Followed by a parenthesised list of label names.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
NUMBER_WORDS = {"inf", "nan"}

TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){},@:])
    """,
    re.VERBOSE,
)

GRAFANA_VAR_RE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")
GRAFANA_BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


class PromQLError(ValueError):
    pass


def substitute_vars(expr, variables=None):
    """Replace Grafana's variables with values Prometheus can run."""
    variables = variables or {}

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in variables:
            return variables[name]
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        return ".*"

    return GRAFANA_VAR_RE.sub(repl, expr)


def tokenize(expr):
    """PromQL tokens as (kind, text); range and subquery brackets come out as one 'range'."""
    tokens = []
    pos = 0
    while pos < len(expr):
        if expr[pos] == "[":
            end = expr.find("]", pos)
            if end < 0:
                raise PromQLError(f"unclosed '[' at {pos}")
            tokens.append(("range", expr[pos : end + 1]))
            pos = end + 1
            continue
        m = TOKEN_RE.match(expr, pos)
        if not m:
            raise PromQLError(f"cannot read {expr[pos:pos + 20]!r} at {pos}")
        kind = m.lastgroup
        if kind not in ("ws", "comment"):
            tokens.append((kind, m.group()))
        pos = m.end()
    return tokens


def unquote(s):
    """A PromQL string's text (escapes reduced to the character they escape)."""
    body = s[1:-1]
    return body if s[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def metric_names(expr):
    """The metric names an expression selects, in order of first appearance.

    Identifiers are metric names unless they are functions (followed by `(`),
    aggregations, keywords, label names (inside `{...}` or the label list after
    by/without/on/ignoring/group_left/group_right) or Inf/NaN. `{__name__="x"}` names x.
    """
    tokens = tokenize(substitute_vars(expr))
    names = []

    def add(name):
        if name not in names:
            names.append(name)

    depth_paren = 0
    for kind, text in tokens:
        depth_paren += {"(": 1, ")": -1}.get(text, 0) if kind == "op" else 0
        if depth_paren < 0:
            raise PromQLError("unbalanced ')'")
    if depth_paren:
        raise PromQLError("unbalanced '('")

    i = 0
    depth_brace = 0
    while i < len(tokens):
        kind, text = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else (None, None)
        if kind == "op" and text == "{":
            depth_brace += 1
        elif kind == "op" and text == "}":
            depth_brace -= 1
            if depth_brace < 0:
                raise PromQLError("unbalanced '}'")
        elif kind == "ident" and depth_brace > 0:
            # A label name; `__name__ = "metric"` selects by name.
            if text == "__name__" and nxt == ("op", "=") and i + 2 < len(tokens) and tokens[i + 2][0] == "string":
                add(unquote(tokens[i + 2][1]))
        elif kind == "ident":
            word = text.lower()
            if word in LABEL_LIST_KEYWORDS:
                if nxt == ("op", "("):
                    close = i + 2
                    while close < len(tokens) and tokens[close] != ("op", ")"):
                        if tokens[close][0] not in ("ident", "string") and tokens[close] != ("op", ","):
                            raise PromQLError(f"{tokens[close][1]!r} in the label list after {text!r}")
                        close += 1
                    if close == len(tokens):
                        raise PromQLError(f"unclosed label list after {text!r}")
                    i = close
            elif word in KEYWORDS or word in AGGREGATORS or word in NUMBER_WORDS:
                pass
            elif text in FUNCTIONS and nxt == ("op", "("):
                pass
            else:
                # A selector (followed by `{`, a range, an operator or nothing), or an
                # unknown function (followed by `(`): either way a name to check.
                add(text)
        i += 1
    if depth_brace != 0:
        raise PromQLError("unbalanced '{'")
    return names


# --- Sources of expressions -------------------------------------------------------------


def dashboard_exprs(dashboard):
    """(where, expr, query?) for every target and label_values variable of a dashboard."""
    found = []

    def walk_panels(panels, trail):
        for p in panels or []:
            title = p.get("title") or f"panel {p.get('id')}"
            here = trail + [title]
            for t in p.get("targets") or []:
                expr = t.get("expr")
                if isinstance(expr, str) and expr.strip():
                    ref = t.get("refId", "?")
                    found.append((f"panel {' / '.join(here)} [{ref}]", expr, True))
            walk_panels(p.get("panels"), here)  # rows (collapsed or not), nested panels

    walk_panels(dashboard.get("panels"), [])
    for r in dashboard.get("rows") or []:  # the pre-5.0 layout
        walk_panels(r.get("panels"), [r.get("title") or "row"])
    for v in (dashboard.get("templating") or {}).get("list") or []:
        query = v.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if v.get("type") != "query" or not isinstance(query, str):
            continue
        m = re.match(r"\s*(?:label_values|query_result)\s*\((.*)\)\s*$", query, re.S)
        if not m:
            continue
        inner = m.group(1)
        if query.strip().startswith("label_values"):
            # label_values(selector, label) or label_values(label)
            parts = inner.rsplit(",", 1)
            if len(parts) < 2:
                continue
            inner = parts[0]
        found.append((f"variable ${v.get('name')}", inner.strip(), False))
    return found


def variable_values(dashboard, overrides):
    values = {}
    for v in (dashboard.get("templating") or {}).get("list") or []:
        name = v.get("name")
        if not name:
            continue
        if v.get("includeAll"):
            values[name] = v.get("allValue") or ".*"
        else:
            cur = (v.get("current") or {}).get("value")
            if isinstance(cur, list):
                cur = "|".join(cur) if len(cur) > 1 else (cur[0] if cur else None)
            values[name] = cur if cur and cur != "$__all" else ".*"
    values.update(overrides)
    return values


def _yaml_scalar_end(text):
    """A plain YAML scalar ends before ` #` (a comment)."""
    m = re.search(r"\s#", text)
    return (text[: m.start()] if m else text).strip()


def rule_exprs(text):
    """(where, expr) for every `expr:` of a Prometheus rules file, without a YAML library.

    Handles plain, single- and double-quoted scalars (on one line or continued on more
    indented lines) and `|`/`>` block scalars (with their -/+ chomping indicators).
    """
    lines = text.splitlines()
    found = []
    name = None
    i = 0
    key_re = re.compile(r"^(\s*)(-\s+)?([A-Za-z_][\w.-]*)\s*:(?:\s+(.*))?$")
    while i < len(lines):
        m = key_re.match(lines[i])
        i += 1
        if not m or lines[i - 1].lstrip().startswith("#"):
            continue
        indent = len(m.group(1)) + len(m.group(2) or "")
        key, rest = m.group(3), (m.group(4) or "")
        stripped = _yaml_scalar_end(rest) if rest.strip()[:1] not in ('"', "'") else rest.strip()
        if not stripped:
            continue  # a mapping or list follows: its keys are read line by line
        # The value goes on over the lines that are blank or more indented than the key.
        cont = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            cont.append(lines[i])
            i += 1
        while cont and not cont[-1].strip():
            cont.pop()
        if key not in ("expr", "alert", "record"):
            continue
        if stripped[:1] in ("|", ">"):
            block_indent = min((len(c) - len(c.lstrip()) for c in cont if c.strip()), default=0)
            body = [c[block_indent:] if c.strip() else "" for c in cont]
            value = "\n".join(body) if stripped[0] == "|" else _fold(body)
        elif stripped[:1] in ('"', "'"):
            value = _quoted(" ".join([stripped] + [c.strip() for c in cont]))
        else:
            more = [_yaml_scalar_end(c) for c in cont if not c.strip().startswith("#")]
            value = " ".join([stripped] + more)
        value = value.strip()
        if key == "expr":
            found.append((f"rule {name or '?'}", value))
        else:
            name = f"{key} {value}"
    return found


def _fold(lines):
    out = ""
    for line in lines:
        if not line:
            out += "\n"
        elif out and not out.endswith("\n"):
            out += " " + line
        else:
            out += line
    return out


def _quoted(s):
    q = s[0]
    end = 1
    while end < len(s):
        if q == "'" and s[end] == "'":
            if s[end + 1 : end + 2] == "'":
                end += 2
                continue
            break
        if q == '"' and s[end] == "\\":
            end += 2
            continue
        if q == '"' and s[end] == '"':
            break
        end += 1
    inner = s[1:end]
    if q == "'":
        return inner.replace("''", "'")
    return json.loads('"' + inner + '"')


# --- Exposition and Prometheus --------------------------------------------------------


def exported_names(exposition):
    """Names a /metrics text exposes: sample names, and _bucket/_sum/_count of histograms."""
    names = set()
    histograms = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                if parts[3] == "histogram":
                    histograms.add(parts[2])
                    names.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
                elif parts[3] == "summary":
                    names.update(parts[2] + s for s in ("", "_sum", "_count"))
                else:
                    names.add(parts[2])
            continue
        if line.startswith("#") or not line.strip():
            continue
        m = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", line)
        if m:
            names.add(m.group())
    return names, histograms


def builtin(name):
    return name == "up" or name.startswith("scrape_") or name in ("ALERTS", "ALERTS_FOR_STATE")


def http_get(url, timeout=10):
    req = urllib.request.Request(url, headers={"Accept": "application/json, text/plain"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read().decode("utf-8", "replace")


def prom_query(base, expr):
    """(series count, error or None). A parse error is final; a connection error is not."""
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = http_get(url)
    except urllib.error.HTTPError as e:
        try:
            data = json.loads(e.read().decode("utf-8", "replace"))
            return None, f"{data.get('errorType')}: {data.get('error')}"
        except ValueError:
            return None, f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return -1, f"cannot reach Prometheus: {e}"
    data = json.loads(body)
    if data.get("status") != "success":
        return None, f"{data.get('errorType')}: {data.get('error')}"
    result = data["data"]
    if result["resultType"] in ("vector", "matrix"):
        return len(result["result"]), None
    return 1, None  # scalar or string


# --- The check --------------------------------------------------------------------------


def resolve(path):
    if os.path.exists(path) or os.path.isabs(path):
        return path
    return os.path.join(REPO, path)


def fetch_expositions(urls, deadline):
    per_hub = {}
    for url in urls:
        while True:
            try:
                per_hub[url] = exported_names(http_get(url))
                break
            except (urllib.error.URLError, OSError) as e:
                if time.monotonic() >= deadline:
                    raise SystemExit(f"FAIL cannot read {url}: {e}")
                time.sleep(2)
    return per_hub


def check(args):
    deadline = time.monotonic() + args.wait_s
    overrides = dict(v.split("=", 1) for v in args.var)
    per_hub = fetch_expositions(args.metrics, deadline)
    exported = set().union(*(names for names, _ in per_hub.values()))
    histograms = set().union(*(h for _, h in per_hub.values()))

    with open(resolve(args.dashboard)) as f:
        dashboard = json.load(f)
    variables = variable_values(dashboard, overrides)
    items = [(w, e, q) for w, e, q in dashboard_exprs(dashboard)]
    n_dash = len(items)
    n_rules = 0
    if args.rules:
        with open(resolve(args.rules)) as f:
            rules = rule_exprs(f.read())
        n_rules = len(rules)
        items += [(w, e, False) for w, e in rules]
        if n_rules == 0:
            print(f"FAIL {args.rules}: no `expr:` found")
            return 1

    failures = 0
    for where, expr, must_return in items:
        flat = " ".join(expr.split())
        problems = []
        notes = []
        try:
            names = metric_names(expr)
        except PromQLError as e:
            names = []
            problems.append(f"cannot read the expression: {e}")
        for name in names:
            if builtin(name):
                continue
            if name in histograms and name not in exported:
                problems.append(f"{name} is a histogram: select {name}_bucket, _sum or _count")
            elif name not in exported:
                problems.append(f"{name} is not in any hub's /metrics")
            else:
                missing = [u for u, (n, _) in per_hub.items() if name not in n]
                if missing:
                    notes.append(f"note: {name} is not (yet) exported by {', '.join(missing)}")
        if where.startswith("variable "):
            status = "names only"
        else:
            query = substitute_vars(expr, variables)
            while True:
                count, err = prom_query(args.prometheus, query)
                if err is None and (count > 0 or not must_return):
                    break
                if count is None:  # Prometheus refused the expression
                    break
                if time.monotonic() >= deadline:
                    break
                time.sleep(2)
            if err:
                problems.append(err)
                status = "error"
            elif must_return and count == 0:
                problems.append("empty result")
                status = "0 series"
            else:
                status = f"{count} series" + ("" if must_return else " now (rule: parsed, names checked)")
        if problems:
            failures += 1
            print(f"FAIL {where}: {flat}")
            for p in problems:
                print(f"       - {p}")
        else:
            print(f"ok   {where}: {flat}  [{', '.join(names) or 'no metric'}; {status}]")
        for n in notes:
            print(f"       {n}")

    print(
        f"\n{len(items)} expressions checked ({n_dash} from the dashboard, {n_rules} from the rules) "
        f"against {len(args.metrics)} hub(s): {failures} failed"
    )
    return 1 if failures else 0


# --- Self-test --------------------------------------------------------------------------

SELF_TEST_EXPRS = [
    ("histogram_quantile(0.99, sum by (le) (rate(dropwire_broadcast_fanout_seconds_bucket[1m])))",
     ["dropwire_broadcast_fanout_seconds_bucket"]),
    ('sum by (result)(rate(dropwire_claims_total{result!="ok"}[1m]))', ["dropwire_claims_total"]),
    ('up{job="dropwire"} == 0', ["up"]),
    ("sum(rate(dropwire_claims_total[5m])) by (instance) / on(instance) group_left(version) dropwire_build_info",
     ["dropwire_claims_total", "dropwire_build_info"]),
    ("histogram_quantile(0.99, sum by (op, le) (rate(dropwire_store_seconds_bucket{op=~\"claim|ping\"}[5m])))",
     ["dropwire_store_seconds_bucket"]),
    ("SUM BY (instance) (dropwire_connections) > BOOL 10", ["dropwire_connections"]),
    ('sum without (instance, job) (dropwire_holds) and ignoring (sku) dropwire_stock_left', ["dropwire_holds", "dropwire_stock_left"]),
    ('label_replace(dropwire_stock_left, "item", "$1", "sku", "(.*)")', ["dropwire_stock_left"]),
    ('{__name__="dropwire_connections", instance=~"hub-.*"}', ["dropwire_connections"]),
    ("rate(dropwire_messages_sent_total[5m] offset 1h) unless dropwire_connections",
     ["dropwire_messages_sent_total", "dropwire_connections"]),
    ("max_over_time(dropwire_webhook_backlog[10m:30s]) > 1e3", ["dropwire_webhook_backlog"]),
    ("time() - dropwire_build_info @ end()", ["dropwire_build_info"]),
    ('sum(rate(dropwire_claims_total{instance=~"$instance", result="ok"}[$__rate_interval]))', ["dropwire_claims_total"]),
    ("sum(dropwire_connections{instance=~\"${instance:regex}\"}) # a comment naming fake_metric{x}", ["dropwire_connections"]),
    ("1e3 * 2 + 0x1F - Inf + NaN", []),
    ('count_values("version", dropwire_build_info) or vector(0)', ["dropwire_build_info"]),
    ("topk(3, sum by (drop) (dropwire_drop_viewers)) or absent(up{job=\"dropwire\"})", ["dropwire_drop_viewers", "up"]),
    ("quantile_over_time(0.9, dropwire_ledger_backlog[5m]) * on() group_right scalar(dropwire_webhook_dead_letters)",
     ["dropwire_ledger_backlog", "dropwire_webhook_dead_letters"]),
    ("rate(dropwire_typo_total[1m]) + rated(dropwire_connections)", ["dropwire_typo_total", "rated", "dropwire_connections"]),
    ('max by (job) (x{job="a"}) > max by (job) (max_over_time(x{job="a"}[10m] offset 10m))', ["x"]),
]

SELF_TEST_RULES = """\
groups:
  - name: t
    rules:
      - alert: Plain
        expr: up{job="dropwire"} == 0   # a comment
        for: 1m
      - alert: Folded
        expr: >-
          sum by (instance) (rate(a_total[1m])) > 0
          or
          sum by (instance) (rate(b_total{event="failed"}[1m])) > 0
        labels: {severity: critical}
      - alert: Literal
        expr: |
          histogram_quantile(0.99,
            sum by (le) (rate(c_bucket[5m]))) > 0.25
      - record: job:d:rate1m
        expr: 'sum(rate(d_total{x=''y''}[1m]))'
      - alert: Double
        expr: "e{a=\\"b\\"} > 1"
"""

SELF_TEST_EXPOSITION = """\
# HELP dropwire_connections Viewer WebSocket connections open now
# TYPE dropwire_connections gauge
dropwire_connections 3
# TYPE dropwire_broadcast_fanout_seconds histogram
dropwire_broadcast_fanout_seconds_bucket{le="0.1"} 1
dropwire_broadcast_fanout_seconds_bucket{le="+Inf"} 1
dropwire_broadcast_fanout_seconds_sum 0.01
dropwire_broadcast_fanout_seconds_count 1
dropwire_claims_total{result="ok"} 2
"""


def self_test():
    failures = 0

    def expect(label, got, want):
        nonlocal failures
        ok = got == want
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {label}\n       -> {got}" + ("" if ok else f"\n       wanted {want}"))

    for expr, want in SELF_TEST_EXPRS:
        try:
            got = metric_names(expr)
        except PromQLError as e:
            got = f"error: {e}"
        expect(expr, got, want)

    for bad in ("sum(x{a=\"b\"", "rate(x[5m)", "x $ y", "sum by (le (x)", "sum(rate(x[1m])", "x{a=\"b\"}}"):
        try:
            metric_names(bad)
            got = "accepted"
        except PromQLError:
            got = "refused"
        expect(f"unreadable: {bad}", got, "refused")

    got = [(w, " ".join(e.split())) for w, e in rule_exprs(SELF_TEST_RULES)]
    expect("rules file: every expr", got, [
        ("rule alert Plain", 'up{job="dropwire"} == 0'),
        ("rule alert Folded", 'sum by (instance) (rate(a_total[1m])) > 0 or sum by (instance) (rate(b_total{event="failed"}[1m])) > 0'),
        ("rule alert Literal", "histogram_quantile(0.99, sum by (le) (rate(c_bucket[5m]))) > 0.25"),
        ("rule record job:d:rate1m", "sum(rate(d_total{x='y'}[1m]))"),
        ("rule alert Double", 'e{a="b"} > 1'),
    ])

    names, hist = exported_names(SELF_TEST_EXPOSITION)
    expect("exposition: names", sorted(names), sorted([
        "dropwire_connections", "dropwire_broadcast_fanout_seconds_bucket",
        "dropwire_broadcast_fanout_seconds_sum", "dropwire_broadcast_fanout_seconds_count",
        "dropwire_claims_total"]))
    expect("exposition: histograms", sorted(hist), ["dropwire_broadcast_fanout_seconds"])

    expect("variables", substitute_vars('x{i=~"$instance",j="${job}"}[$__rate_interval] [[k]]', {"job": "dropwire"}),
           'x{i=~".*",j="dropwire"}[1m] .*')

    dash = {"panels": [
        {"title": "A", "targets": [{"refId": "A", "expr": "a"}, {"refId": "B", "expr": ""}]},
        {"type": "row", "title": "R", "collapsed": True, "panels": [{"title": "B", "targets": [{"refId": "A", "expr": "b"}]}]}],
        "templating": {"list": [{"name": "instance", "type": "query", "query": {"query": "label_values(c{job=\"x\"}, instance)"}}]}}
    expect("dashboard: every expr", [(w, e) for w, e, _ in dashboard_exprs(dash)],
           [("panel A [A]", "a"), ("panel R / B [A]", "b"), ("variable $instance", 'c{job="x"}')])

    print(f"\nself-test: {failures} failed")
    return 1 if failures else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--metrics", action="append", default=[], help="a hub's /metrics URL (repeat per hub)")
    ap.add_argument("--dashboard", default=DEFAULT_DASHBOARD)
    ap.add_argument("--rules", default=DEFAULT_RULES, help="a Prometheus rules file ('' to skip)")
    ap.add_argument("--wait-s", type=float, default=0, help="retry empty dashboard queries until this many seconds have passed")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="a dashboard variable's value")
    ap.add_argument("--self-test", action="store_true", help="check the expression parsing and exit")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    if not args.metrics:
        ap.error("give at least one --metrics URL")
    if not args.prometheus:
        ap.error("give --prometheus (the dashboard's queries must run)")
    if any("=" not in v for v in args.var):
        ap.error("--var takes NAME=VALUE")
    return check(args)


if __name__ == "__main__":
    sys.exit(main())
