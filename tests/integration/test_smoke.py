"""test_smoke.py - hifadhi-core serve answers the basics an operator and a client rely on first.

Health for the load balancer, Prometheus text for monitoring, and the uniform JSON error body (with the
request id a support person asks for) on an unknown route or a wrong method.
"""

import re

from harness import Core, Suite

REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9-]{1,36}$")
METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"'
SAMPLE_RE = re.compile(
    rf"^{METRIC_NAME}(?:\{{(?:{LABEL}(?:,{LABEL})*,?)?\}})? "
    r"(?:[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?|[-+]?Inf|NaN)(?: -?[0-9]+)?$")
TYPE_RE = re.compile(rf"^# TYPE {METRIC_NAME} (counter|gauge|histogram|summary|untyped)$")
HELP_RE = re.compile(rf"^# HELP {METRIC_NAME}( .*)?$")


def check_error_body(s, what, status, headers, body, want_status, want_code, want_request_id=None):
    """The uniform error: {"error": {"code", "message", "request_id"}}, JSON, request id echoed."""
    s.eq(status, want_status, f"{what}: status")
    s.check(headers.get("Content-Type", "").startswith("application/json"), f"{what}: JSON content type",
            f"got {headers.get('Content-Type')!r}")
    err = body.get("error") if isinstance(body, dict) else None
    if not s.check(isinstance(err, dict), f"{what}: body is {{\"error\": {{...}}}}", f"got {body!r}"):
        return
    s.eq(err.get("code"), want_code, f"{what}: error code")
    s.check(isinstance(err.get("message"), str) and err["message"].strip() != "", f"{what}: has a message",
            f"got {err.get('message')!r}")
    rid = headers.get("X-Request-Id")
    if want_request_id:
        s.eq(rid, want_request_id, f"{what}: X-Request-Id echoed")
    else:
        s.check(rid is not None and REQUEST_ID_RE.match(rid), f"{what}: X-Request-Id generated", f"got {rid!r}")
    s.eq(err.get("request_id"), rid, f"{what}: request_id in the body is the X-Request-Id")


def check_metrics_text(s, body):
    lines = body.splitlines() if isinstance(body, str) else []
    bad = [ln for ln in lines
           if ln and not (SAMPLE_RE.match(ln) or TYPE_RE.match(ln) or HELP_RE.match(ln)
                          or (ln.startswith("#") and not ln.startswith("# TYPE") and not ln.startswith("# HELP")))]
    s.check(not bad, "metrics: every line is a Prometheus sample, HELP, TYPE or comment", f"bad lines: {bad[:5]!r}")
    samples = [ln for ln in lines if ln and not ln.startswith("#")]
    s.check(len(samples) > 0, "metrics: at least one sample", f"{len(lines)} lines")
    typed = [TYPE_RE.match(ln).group(0).split()[2] for ln in lines if TYPE_RE.match(ln)]
    s.check(len(typed) == len(set(typed)), "metrics: no metric is typed twice", f"TYPE lines for {typed!r}")
    s.check(body.endswith("\n") if isinstance(body, str) else False, "metrics: text ends with a newline")


with Suite() as s:
    core = Core(s)

    status, headers, _ = core.get("/healthz")
    s.eq(status, 200, "healthz answers 200")
    status, headers, _ = core.get("/healthz", headers={"X-Request-Id": "smoke-health-1"})
    s.eq(headers.get("X-Request-Id"), "smoke-health-1", "healthz echoes X-Request-Id")

    status, headers, body = core.get("/metrics")
    s.eq(status, 200, "metrics answers 200")
    s.check(headers.get("Content-Type", "").startswith("text/plain"), "metrics: Prometheus text content type",
            f"got {headers.get('Content-Type')!r}")
    check_metrics_text(s, body)

    status, headers, body = core.get("/api/v1/no-such-thing", headers={"X-Request-Id": "smoke-404-api"})
    check_error_body(s, "unknown API route", status, headers, body, 404, "not_found", "smoke-404-api")

    status, headers, body = core.get("/no-such-page")
    check_error_body(s, "unknown route outside the API, no request id sent", status, headers, body, 404,
                     "not_found")

    status, headers, body = core.post("/healthz", json={}, headers={"X-Request-Id": "smoke-405"})
    check_error_body(s, "POST /healthz", status, headers, body, 405, "method", "smoke-405")
    allow = headers.get("Allow", "")
    s.check("GET" in [m.strip() for m in allow.split(",")], "405 names the allowed methods in Allow",
            f"got Allow: {allow!r}")

    status, headers, body = core.delete("/metrics")
    check_error_body(s, "DELETE /metrics", status, headers, body, 405, "method")

    # A request id that could inject into log lines is not echoed; a well-formed one is generated instead.
    status, headers, _ = core.get("/healthz", headers={"X-Request-Id": "bad id\" level=error x=" + "y" * 40})
    rid = headers.get("X-Request-Id") or ""
    s.check(status == 200 and REQUEST_ID_RE.match(rid) is not None, "malformed X-Request-Id is replaced",
            f"status {status}, X-Request-Id {rid!r}")
