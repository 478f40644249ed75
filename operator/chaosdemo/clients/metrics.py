"""Prometheus metrics of the operator: what its demos did, and how fast.

One ``Metrics`` per process, on a registry of its own (so a test can read it
without a global), served over HTTP by ``serve`` at startup. The lifecycle,
the diagnosis and the Claude client report to it; nothing here decides
anything.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

__all__ = ["Metrics"]

# Detection runs from milliseconds (watch events) to minutes (PD's timing); recovery from seconds to half an hour.
DETECTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
RECOVERY_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1200, 1800)
CLAUDE_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
STATEMENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
UNAVAILABLE_BUCKETS = (0, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300)
# The canary's error codes as labels: TiDB's own under faults (the ones sysbench is told to ignore, and
# 9005 Region is unavailable), the driver's, the canary's; any other is "other", so a TiDB cannot grow the
# label set.
KNOWN_CODES = frozenset({"1105", "1205", "1213", "2003", "2006", "2013", "8022", "8027", "8028", "9001", "9002",
                         "9004", "9005", "9007", "timeout", "saturated", "refused"})


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        self.demos = Counter("chaosdemo_demos", "ChaosDemos that ended, by fault action and outcome (phase).",
                             ["action", "outcome"], registry=r)
        self.detection = Histogram("chaosdemo_detection_seconds",
                                   "From the injection to the first broken invariant, by action and invariant.",
                                   ["action", "invariant"], buckets=DETECTION_BUCKETS, registry=r)
        self.recovery = Histogram("chaosdemo_recovery_seconds",
                                  "From the injection to every invariant holding for the stability window.",
                                  ["action"], buckets=RECOVERY_BUCKETS, registry=r)
        self.breaches = Counter("chaosdemo_invariant_breaches",
                                "Invariants seen broken during demos (each opening counted once).",
                                ["invariant"], registry=r)
        self.claude_requests = Counter("chaosdemo_claude_requests",
                                       "Diagnosis requests to Claude, by result (ok, or the failure reason).",
                                       ["result"], registry=r)
        self.claude_seconds = Histogram("chaosdemo_claude_request_seconds",
                                        "Latency of a diagnosis request to Claude, the SDK's retries included.",
                                        buckets=CLAUDE_BUCKETS, registry=r)
        self.claude_tokens = Counter("chaosdemo_claude_tokens", "Tokens of Claude's diagnoses, by direction.",
                                     ["direction"], registry=r)
        self.fallbacks = Counter("chaosdemo_rules_fallbacks",
                                 "Diagnoses the rules engine gave instead of Claude, by reason.", ["reason"],
                                 registry=r)
        self.undo_failures = Counter("chaosdemo_undo_failures",
                                     "Undo-ledger entries whose undo failed in a reconcile round (kept for the next).",
                                     ["action"], registry=r)
        self.stuck = Gauge("chaosdemo_demos_stuck", "Demos the operator has stopped handling (being deleted long "
                           "after it was asked, or never taken up), at the last look.", registry=r)
        self.canary_statements = Counter("chaosdemo_canary_statements",
                                         "SQL canary statements, by fault action, result (ok or failed) and MySQL "
                                         "error code (timeout: given up).", ["action", "result", "code"], registry=r)
        self.canary_seconds = Histogram("chaosdemo_canary_statement_seconds",
                                        "Latency of the SQL canary's statements that succeeded, by fault action.",
                                        ["action"], buckets=STATEMENT_BUCKETS, registry=r)
        self.canary_unavailable = Histogram("chaosdemo_canary_unavailable_seconds",
                                            "The longest stretch of a demo with no successful canary statement, "
                                            "by fault action (observed once per demo).", ["action"],
                                            buckets=UNAVAILABLE_BUCKETS, registry=r)
        self.suite_runs = Counter("chaosdemo_suite_runs", "ChaosDemoSuite runs that ended, by verdict.", ["verdict"],
                                  registry=r)
        self.suite_false_alarms = Counter("chaosdemo_suite_false_alarms",
                                          "No-fault controls of suite runs on which something was detected.",
                                          registry=r)
        self.in_flight = Gauge("chaosdemo_demos_in_flight", "Demos this replica is running now.", registry=r)
        self.leader = Gauge("chaosdemo_leader", "1 while this replica leads (runs the demos), else 0.",
                            registry=r)

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        start_http_server(port, addr=addr, registry=self.registry)

    def suite_ended(self, verdict: str, false_alarms: int) -> None:
        self.suite_runs.labels(verdict).inc()
        self.suite_false_alarms.inc(false_alarms)

    def ended(self, action: str, outcome: str) -> None:
        self.demos.labels(action, outcome).inc()

    def detected(self, action: str, invariant: str, seconds: float) -> None:
        self.detection.labels(action, invariant).observe(seconds)

    def recovered(self, action: str, seconds: float) -> None:
        self.recovery.labels(action).observe(seconds)

    def breach(self, invariant: str) -> None:
        self.breaches.labels(invariant).inc()

    def claude(self, result: str, seconds: float, input_tokens: int = 0, output_tokens: int = 0) -> None:
        self.claude_requests.labels(result).inc()
        self.claude_seconds.observe(seconds)
        if input_tokens:
            self.claude_tokens.labels("input").inc(input_tokens)
        if output_tokens:
            self.claude_tokens.labels("output").inc(output_tokens)

    def undo_failed(self, action: str) -> None:
        self.undo_failures.labels(action).inc()

    def fallback(self, reason: str) -> None:
        self.fallbacks.labels(reason).inc()

    def statement(self, action: str, ok: bool, code: str | None, seconds: float) -> None:
        if ok:
            self.canary_statements.labels(action, "ok", "").inc()
            self.canary_seconds.labels(action).observe(seconds)
        else:
            self.canary_statements.labels(action, "failed", code if code in KNOWN_CODES else "other").inc()

    def unavailable(self, action: str, seconds: float) -> None:
        self.canary_unavailable.labels(action).observe(seconds)
