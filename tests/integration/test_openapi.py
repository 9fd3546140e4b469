#!/usr/bin/python3
"""test_openapi.py - docs/openapi.yaml describes exactly the routes core/api.c serves.

Reads the routes from the `routes[]` table of core/api.c ({"GET", "programmes/*", fn, 200} is
GET /api/v1/programmes/{param}) plus the paths dispatch() serves itself (/healthz, /metrics), and the
operations from the `paths:` section of docs/openapi.yaml (path keys at indent 2, method keys at
indent 4), and checks that both sets are equal. For each route it also checks that the operation
documents the success status the route answers with, that it has at least one 2xx response, and that
every error response (4xx/5xx) uses the Error schema, directly or through components/responses.

Python 3 standard library only (no YAML library: a small indentation-based scan is enough for the
2-space block style the file is written in). Runs from anywhere; the repository root is found from
this file's location, and the environment (HF_* variables of the test runner) is not used.
Prints one `ok - ...` / `FAIL - ...` line per check and a final `N passed, N failed`; exits 1 on any
failure.
"""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_C = os.path.join(ROOT, "core", "api.c")
OPENAPI = os.path.join(ROOT, "docs", "openapi.yaml")

HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}
ERROR_SCHEMA_REF = "#/components/schemas/Error"
# Error responses whose body is, by design, not an Error. GET /healthz answers 503 with the health
# object {"status": "degraded", "db": "down"} (handle_health in core/api.c), not an error body.
NON_ERROR_BODIES = {("GET", "/healthz", "503")}

_results = []


def report(ok, text):
    _results.append(ok)
    print(("ok - " if ok else "FAIL - ") + text)


# ---------------------------------------------------------------- core/api.c


def strip_c_comments(src):
    """Drops /* */ and // comments, leaving string and character literals alone ("programmes/*" is a
    route pattern, not the start of a comment)."""
    token = re.compile(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'|/\*.*?\*/|//[^\n]*', re.S)
    return token.sub(lambda m: " " if m.group(0)[0] == "/" else m.group(0), src)


def code_routes():
    """{(METHOD, normalised path): (display path, ok status)} from core/api.c."""
    with open(API_C, encoding="utf-8") as f:
        src = strip_c_comments(f.read())
    m = re.search(r"\broutes\s*\[\s*\]\s*=\s*\{(.*?)\n\s*\}\s*;", src, re.S)
    if not m:
        raise ValueError("no `routes[] = {...};` initialiser in core/api.c")
    routes = {}
    entry = re.compile(r'\{\s*"([A-Za-z]+)"\s*,\s*"([^"]*)"\s*,\s*\w+\s*,\s*(\d{3})\s*[,}]')
    for method, pattern, status in entry.findall(m.group(1)):
        path = "/api/v1/" + pattern
        display = "/".join("{param}" if s == "*" else s for s in path.split("/"))
        routes[(method.upper(), path)] = (display, status)
    if not routes:
        raise ValueError("the routes[] initialiser of core/api.c has no entries")
    # Paths dispatch() answers before the table (GET only: other methods get 405), with 200.
    for path in sorted(set(re.findall(r'strcmp\s*\(\s*req->path\s*,\s*"(/[^"]*)"\s*\)', src))):
        routes[("GET", path)] = (path, "200")
    return routes


# ---------------------------------------------------------------- docs/openapi.yaml

_KEY = re.compile(
    r"""^(?P<indent> *)"""
    r"""(?:'(?P<sq>[^']*)'|"(?P<dq>[^"]*)"|(?P<plain>[^\s'"#\-][^:#]*?|-[^\s:#][^:#]*?))"""
    r"""\s*:(?:\s+(?P<rest>.*?))?\s*$"""
)
_BLOCK_SCALAR = re.compile(r"^[|>][+-]?\d*\s*(#.*)?$")


def yaml_lines(path):
    """(line number, indent, key or None, value, raw line) for the non-blank, non-comment lines of a
    block-style YAML file; the contents of block scalars (`key: |`) are skipped."""
    with open(path, encoding="utf-8") as f:
        raw = f.read().split("\n")
    out = []
    scalar_indent = None  # indent of the key that opened a block scalar
    for no, line in enumerate(raw, 1):
        if "\t" in line[: len(line) - len(line.lstrip())]:
            raise ValueError("line %d: a tab in the indentation" % no)
        stripped = line.strip()
        indent = len(line) - len(line.lstrip(" "))
        if scalar_indent is not None:
            if not stripped or indent > scalar_indent:
                continue
            scalar_indent = None
        if not stripped or stripped.startswith("#"):
            continue
        m = _KEY.match(line)
        key = value = None
        if m:
            key = m.group("sq") if m.group("sq") is not None else m.group("dq")
            if key is None:
                key = m.group("plain").strip()
            value = m.group("rest") or ""
            if _BLOCK_SCALAR.match(value):
                scalar_indent = indent
        out.append((no, indent, key, value, line))
    return out


def section(lines, key, indent=0):
    """The lines inside the mapping `key:` at `indent` (up to the next line at that indent or less)."""
    for i, (_, ind, k, _, _) in enumerate(lines):
        if ind == indent and k == key:
            body = []
            for item in lines[i + 1:]:
                if item[1] <= indent:
                    break
                body.append(item)
            return body
    return None


def children(lines, indent):
    """[(key, lines of its block)] of the mapping keys at exactly `indent` in lines."""
    out = []
    for i, (_, ind, k, _, _) in enumerate(lines):
        if ind == indent and k is not None:
            body = []
            for item in lines[i + 1:]:
                if item[1] <= indent:
                    break
                body.append(item)
            out.append((k, body))
    return out


def refs(lines):
    return [m.group(1) for _, _, _, _, raw in lines for m in [re.search(r"\$ref:\s*['\"]?([^'\"\s]+)", raw)] if m]


def normalise(path):
    return "/".join("*" if re.fullmatch(r"\{[^}]*\}", s) else s for s in path.split("/"))


def spec():
    """({(METHOD, normalised path): (display path, {status: lines})}, {response name: lines})."""
    lines = yaml_lines(OPENAPI)
    paths = section(lines, "paths")
    if paths is None:
        raise ValueError("no top-level `paths:` in docs/openapi.yaml")
    ops = {}
    for path, body in children(paths, 2):
        for method, op in children(body, 4):
            if method not in HTTP_METHODS:
                continue  # parameters, summary, description, servers of the path item
            responses = section(op, "responses", 6) or []
            ops[(method.upper(), normalise(path))] = (path, dict(children(responses, 8)))
    components = section(lines, "components") or []
    shared = dict(children(section(components, "responses", 2) or [], 4))
    return ops, shared


def response_problems(method, path, responses, shared):
    problems = []
    statuses = sorted(responses)
    if not any(re.fullmatch(r"2\d\d|2XX", s) for s in statuses):
        problems.append("no 2xx response")
    for status in statuses:
        if not re.fullmatch(r"[45]\d\d|[45]XX|default", status):
            continue
        if (method, path, status) in NON_ERROR_BODIES:
            continue
        body = responses[status]
        targets = refs(body)
        ok = ERROR_SCHEMA_REF in targets
        for t in targets:
            if t.startswith("#/components/responses/"):
                name = t.rsplit("/", 1)[1]
                if name not in shared:
                    problems.append("%s refers to missing %s" % (status, t))
                elif ERROR_SCHEMA_REF in refs(shared[name]):
                    ok = True
        if not ok:
            problems.append("%s does not use the Error schema" % status)
    return problems


def main():
    try:
        routes = code_routes()
        report(True, "core/api.c: %d routes" % len(routes))
    except (OSError, ValueError) as e:
        report(False, "core/api.c: %s" % e)
        routes = None
    try:
        ops, shared = spec()
        report(len(ops) > 0, "docs/openapi.yaml: %d operations under paths:" % len(ops))
    except (OSError, ValueError) as e:
        report(False, "docs/openapi.yaml: %s" % e)
        ops = None
    if routes is not None and ops is not None:
        for key in sorted(set(routes) | set(ops), key=lambda k: (k[1], k[0])):
            method = key[0]
            if key not in ops:
                report(False, "%s %s is served by core/api.c but missing from docs/openapi.yaml"
                       % (method, routes[key][0]))
                continue
            path, responses = ops[key]
            name = "%s %s" % (method, path)
            if key not in routes:
                report(False, "%s is in docs/openapi.yaml but core/api.c has no such route" % name)
                continue
            problems = response_problems(method, path, responses, shared)
            want = routes[key][1]
            if want not in responses:
                problems.append("the route answers %s, which is not documented" % want)
            if problems:
                report(False, "%s: %s" % (name, "; ".join(problems)))
            else:
                report(True, name)
    passed = sum(1 for r in _results if r)
    failed = len(_results) - passed
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
