#!/usr/bin/env python3
"""The remote reranker against a real vLLM on loopback (driven by
scripts/test/vllm.sh, which prepares the model and the venv).

1. vLLM serves a mailsort-trained cross-encoder (BertForSequenceClassification
   layout) with an API key.
2. Three real backends serve the same bundle and reranker folder: one on
   its own ONNX Runtime session, two with `--reranker remote` pointed at
   vLLM (its `/v1/score`, and its `/v1/rerank`).
3. Parity: the same /v1/rerank requests to all three; the logits, rankings
   and time spent are compared.
4. End to end: `mailsort eval --backend` through each backend.
5. Faults under load: vLLM killed (fast JSON 503s, breaker open, /health
   shows it), restarted (the breaker closes); vLLM frozen with SIGSTOP
   (504 by the deadline, never later).
6. Bad configuration: each stops start-up with one clear error.

Writes OUT/summary.json and exits 1 on any failed check.
"""
import argparse
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "hardening"))
from harness import backend_command, finish, forwarded_emails, log, new_key, wait_ready  # noqa: E402

MODEL = "mailsort-reranker"


def request(port, method, path, body=None, key=None, timeout=30):
    """(status, parsed JSON or None, raw text, seconds)."""
    t = time.monotonic()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        c.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = c.getresponse()
        text = r.read().decode("utf-8", "replace")
        status = r.status
    except OSError as e:
        return None, None, str(e), time.monotonic() - t
    finally:
        c.close()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    return status, parsed, text, time.monotonic() - t


class Vllm:
    """vLLM's OpenAI-compatible server in its own process group (it starts
    an engine-core process of its own)."""

    def __init__(self, a, key):
        self.a, self.key, self.proc, self.starts = a, key, None, []

    def start(self):
        env = dict(os.environ, VLLM_API_KEY=self.key, VLLM_CPU_KVCACHE_SPACE="1", VLLM_LOGGING_LEVEL="WARNING")
        cmd = [self.a.vllm_python, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.a.hf_dir),
               "--served-model-name", MODEL, "--host", "127.0.0.1", "--port", str(self.a.vllm_port),
               "--dtype", "float32", "--max-model-len", "512"]
        log_file = open(self.a.out / f"vllm-{len(self.starts)}.log", "w")
        t = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
        while time.monotonic() - t < self.a.vllm_timeout:
            if self.proc.poll() is not None:
                raise SystemExit(f"vLLM exited with {self.proc.returncode}: see {log_file.name}")
            status, _, _, _ = request(self.a.vllm_port, "GET", "/v1/models", key=self.key, timeout=2)
            if status == 200:
                self.starts.append(round(time.monotonic() - t, 1))
                log(f"vLLM ready after {self.starts[-1]} s")
                return
            time.sleep(1)
        raise SystemExit(f"vLLM not ready after {self.a.vllm_timeout} s: see {log_file.name}")

    def signal(self, sig):
        os.killpg(self.proc.pid, sig)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGKILL)
            self.proc.wait()


def start_backend(a, port, key_file, name, extra=(), env=None):
    log_path = a.out / f"backend-{name}.log"
    cmd = backend_command(argparse.Namespace(**{**vars(a), "port": port}), key_file, a.onnx_dir, extra)
    proc = subprocess.Popen(cmd, stdout=open(log_path, "w"), stderr=subprocess.STDOUT, env=env)
    wait_ready(port, proc, log_path, timeout=300)
    return proc


def remote_flags(a, url=None, model=MODEL, more=()):
    return ["--reranker", "remote", "--remote-url", url or f"http://127.0.0.1:{a.vllm_port}", "--remote-model", model,
            "--remote-timeout-ms", "5000", "--breaker-failures", "3", "--breaker-cooldown-ms", "2000", *more]


def parity(a, key, emails, bundle, ports):
    """The same requests through the ONNX backend and each remote one:
    logits, orders, and the seconds each spent."""
    base, others = ports[0], ports[1:]
    stats = {p: {"diffs": [], "same_top": 0, "same_order": 0, "seconds": 0.0} for p in others}
    base_seconds, n, pairs = 0.0, 0, 0
    for i in range(0, len(emails), 16):
        batch = [dict(e, id=f"p{i + j}") for j, e in enumerate(emails[i : i + 16])]
        # score_all: the logits are compared even where a bundle's fusion
        # would not read them.
        body = {"bundle": bundle, "emails": batch, "deadline_ms": 60000, "score_all": True}
        answers = {}
        for port in ports:
            status, parsed, text, seconds = request(port, "POST", "/v1/rerank", body, key, timeout=90)
            if status != 200:
                raise SystemExit(f"parity request to :{port} answered {status}: {text[:300]}")
            answers[port] = parsed["results"]
            if port == base:
                base_seconds += seconds
            else:
                stats[port]["seconds"] += seconds
        n += len(batch)
        pairs += sum(len(e["candidates"]) for e in batch)
        for port in others:
            st = stats[port]
            for x, y in zip(answers[base], answers[port]):
                sx = {c["label"]: c["score"] for c in x["candidates"]}
                sy = {c["label"]: c["score"] for c in y["candidates"]}
                st["diffs"].extend(abs(sx[k] - sy[k]) for k in sx)
                st["same_top"] += x["label"] == y["label"]
                st["same_order"] += [c["label"] for c in x["candidates"]] == [c["label"] for c in y["candidates"]]
    out = {"emails": n, "pairs": pairs, "onnx_pairs_per_s": round(pairs / base_seconds, 1)}
    for port in others:
        st = stats[port]
        d = sorted(st["diffs"])
        out[str(port)] = {"max_abs_logit_diff": float(f"{d[-1]:.3g}"),
                          "p99_abs_logit_diff": float(f"{d[int(0.99 * (len(d) - 1))]:.3g}"),
                          "median_abs_logit_diff": float(f"{d[len(d) // 2]:.3g}"),
                          "same_top_label": round(st["same_top"] / n, 4), "same_order": round(st["same_order"] / n, 4),
                          "pairs_per_s": round(pairs / st["seconds"], 1)}
    return out


def end_to_end(a, key, port, name):
    out = a.out / f"eval-{name}.json"
    decisions = a.out / f"decisions-{name}.jsonl"
    t = time.monotonic()
    cmd = [a.mailsort, "eval", "--bundle", str(a.bundle), "--test", str(a.test), "--json",
           "--backend", f"http://127.0.0.1:{port}", "--decisions-out", str(decisions)]
    if a.limit:
        cmd += ["--limit", str(a.limit)]
    p = subprocess.run(cmd, env=dict(os.environ, MAILSORT_API_KEY=key), capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"mailsort eval through {name} failed: {p.stderr[-600:]}")
    out.write_text(p.stdout)
    r = json.loads(p.stdout)
    e = r["end_to_end"]
    labels = {d["id"]: d["label"] for d in map(json.loads, open(decisions))}
    return {"n": r["n"], "forwarded": round(r["n"] * r["forwarded_rate"]), "edge_only": round(100 * r["accuracy"], 2),
            "end_to_end": round(100 * e["accuracy"], 2), "reranked": e["reranked"], "unanswered": e.get("unanswered", 0),
            "reranker": e["reranker"], "seconds": round(time.monotonic() - t, 1)}, labels


class Load(threading.Thread):
    """Back-to-back /v1/rerank calls with a short deadline; records each."""

    def __init__(self, port, key, bundle, emails, deadline_ms):
        super().__init__(daemon=True)
        self.port, self.key, self.deadline_ms = port, key, deadline_ms
        self.body = {"bundle": bundle, "emails": [dict(e, id=f"l{i}") for i, e in enumerate(emails[:4])],
                     "deadline_ms": deadline_ms}
        self.records, self.stop = [], threading.Event()

    def run(self):
        while not self.stop.is_set():
            t0 = time.monotonic()
            status, parsed, text, s = request(self.port, "POST", "/v1/rerank", self.body, self.key, timeout=30)
            code = parsed.get("code") if isinstance(parsed, dict) else None
            self.records.append({"t": t0, "status": status, "code": code, "seconds": s, "json": parsed is not None})
            if status != 200:
                time.sleep(0.05)

    def between(self, t0, t1):
        return [r for r in self.records if t0 <= r["t"] < t1]


def health(port, key):
    _, parsed, _, _ = request(port, "GET", "/health", key=key, timeout=5)
    return (parsed or {}).get("remote", {}).get("breaker", {})


def wait_for(pred, timeout, step=0.2):
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def faults(a, key, vllm, emails, bundle, problems):
    """Kill vLLM under load, bring it back; then freeze it."""
    load = Load(a.remote_port, key, bundle, emails, deadline_ms=2000)
    load.start()
    time.sleep(4)
    t_kill = time.monotonic()
    vllm.kill()
    log("vLLM killed under load")
    opened = wait_for(lambda: health(a.remote_port, key).get("state") == "open" and time.monotonic(), 15)
    time.sleep(3)
    down = health(a.remote_port, key)
    t_restart = time.monotonic()
    vllm.start()
    t_back = time.monotonic()
    closed = wait_for(lambda: any(r["status"] == 200 for r in load.between(t_back, 1e18))
                      and health(a.remote_port, key).get("state") == "closed" and time.monotonic(), 30)
    t_closed = time.monotonic()
    time.sleep(2)

    # Frozen: the connection stays open, nothing answers.
    t_stop = time.monotonic()
    vllm.signal(signal.SIGSTOP)
    log("vLLM frozen (SIGSTOP)")
    # Long enough for three timed-out calls to open the breaker.
    time.sleep(9)
    vllm.signal(signal.SIGCONT)
    t_cont = time.monotonic()
    recovered = wait_for(lambda: any(r["status"] == 200 for r in load.between(t_cont, 1e18)), 30)
    time.sleep(1)
    load.stop.set()
    load.join()

    before = load.between(0, t_kill)
    outage = load.between(t_kill, t_restart)
    frozen = load.between(t_stop, t_cont)
    slack = 0.5
    result = {
        "before_kill": {"requests": len(before), "ok": sum(r["status"] == 200 for r in before)},
        "while_down": {
            "requests": len(outage),
            "ok": sum(r["status"] == 200 for r in outage),
            "codes": sorted({f"{r['status']} {r['code']}" for r in outage}),
            "slowest_s": round(max((r["seconds"] for r in outage), default=0), 3),
            "median_s_once_open": round(sorted(r["seconds"] for r in outage if opened and r["t"] >= opened)[
                len([r for r in outage if opened and r["t"] >= opened]) // 2] if opened else -1, 4),
            "breaker_opened_after_s": round(opened - t_kill, 2) if opened else None,
            "health_while_down": down,
        },
        "restart": {"vllm_start_s": vllm.starts[-1],
                    "closed_after_vllm_ready_s": round(t_closed - t_back, 2) if closed else None},
        "frozen": {
            "requests": len(frozen),
            "codes": sorted({f"{r['status']} {r['code']}" for r in frozen}),
            "slowest_s": round(max((r["seconds"] for r in frozen), default=0), 3),
            "recovered": bool(recovered),
            "breaker_opened": any(r["code"] == "reranker_unavailable" for r in frozen),
        },
    }
    if result["before_kill"]["ok"] == 0:
        problems.append("no request succeeded before the kill")
    failed = [r for r in outage if r["status"] != 200]
    if not failed:
        problems.append("no request failed while vLLM was down")
    if any(not r["json"] for r in failed):
        problems.append("a failure while vLLM was down was not a JSON error")
    if any(r["status"] not in (503, 504) for r in failed):
        problems.append(f"unexpected statuses while down: {result['while_down']['codes']}")
    if result["while_down"]["slowest_s"] > 2.0 + slack:
        problems.append(f"a request hung past its deadline while down ({result['while_down']['slowest_s']} s)")
    if not opened:
        problems.append("the breaker did not open (per /health) within 15 s of the kill")
    if down.get("state") not in ("open", "half_open") or not down.get("last_error"):
        problems.append(f"/health did not show the open breaker and its error: {down}")
    if not closed:
        problems.append("the breaker did not close within 30 s of vLLM being back")
    if any(not r["json"] or r["status"] not in (200, 503, 504) for r in frozen):
        problems.append(f"unexpected answers while frozen: {result['frozen']['codes']}")
    if result["frozen"]["slowest_s"] > 2.0 + slack:
        problems.append(f"a request hung past its deadline while vLLM was frozen ({result['frozen']['slowest_s']} s)")
    if not recovered:
        problems.append("no request succeeded within 30 s of SIGCONT")
    return result


def bad_configs(a, key_file):
    """Each must stop start-up (non-zero exit) with its one-line error."""
    good, other = a.onnx_dir, a.other_onnx_dir
    cases = [
        ("no model name", ["--reranker", "remote", "--remote-url", f"http://127.0.0.1:{a.vllm_port}"],
         "--reranker remote needs --remote-model", a.vllm_key, good),
        ("nothing listening", remote_flags(a, url="http://127.0.0.1:9"), "cannot reach the remote reranker", a.vllm_key, good),
        ("a path in the URL", remote_flags(a, url=f"http://127.0.0.1:{a.vllm_port}/v1/score"), "give the base URL only",
         a.vllm_key, good),
        ("wrong model name", remote_flags(a, model="no-such-model"), 'does not serve model "no-such-model"', a.vllm_key, good),
        ("wrong engine key", remote_flags(a), "401", "wrong-key", good),
        ("not an engine (a mailsort backend)", remote_flags(a, url=f"http://127.0.0.1:{a.onnx_port}"), "no model list",
         a.vllm_key, good),
        ("the reranker folder of another checkpoint", remote_flags(a), "serves another checkpoint", a.vllm_key, other),
    ]
    out = []
    for name, flags, expect, engine_key, reranker_dir in cases:
        env = dict(os.environ, MAILSORT_REMOTE_API_KEY=engine_key)
        cmd = backend_command(argparse.Namespace(**{**vars(a), "port": a.remote_port + 10}), key_file, reranker_dir, flags)
        t = time.monotonic()
        try:
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
            code, err = p.returncode, p.stderr
        except subprocess.TimeoutExpired:
            code, err = None, "still running after 120 s"
        line = next((l for l in err.splitlines() if l.startswith("error:")), err.strip().splitlines()[-1] if err.strip() else "")
        out.append({"case": name, "exit": code, "seconds": round(time.monotonic() - t, 1), "error": line[:400],
                    "ok": code not in (0, None) and expect in line})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--mailsort", required=True)
    ap.add_argument("--backend-bin", required=True)
    ap.add_argument("--bundle", type=pathlib.Path, required=True)
    ap.add_argument("--test", type=pathlib.Path, required=True)
    ap.add_argument("--ort-lib", required=True)
    ap.add_argument("--onnx-dir", type=pathlib.Path, required=True, help="mailsort models reranker folder")
    ap.add_argument("--hf-dir", type=pathlib.Path, required=True, help="the same checkpoint, for vLLM")
    ap.add_argument("--other-onnx-dir", type=pathlib.Path, required=True,
                    help="a reranker folder of another checkpoint (must be refused)")
    ap.add_argument("--model-dir", type=pathlib.Path, required=True)
    ap.add_argument("--vllm-python", required=True)
    ap.add_argument("--vllm-port", type=int, default=18410)
    ap.add_argument("--onnx-port", type=int, default=18411)
    ap.add_argument("--remote-port", type=int, default=18412)
    ap.add_argument("--rerank-port", type=int, default=18413, help="a remote backend on /v1/rerank")
    ap.add_argument("--vllm-timeout", type=int, default=900, help="seconds vLLM may take to start")
    ap.add_argument("--limit", type=int, default=0, help="test e-mails for the end-to-end runs (0: all)")
    ap.add_argument("--parity-emails", type=int, default=200)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.reranker_dir = a.onnx_dir
    a.vllm_key = "vllm-key-" + os.urandom(8).hex()
    key, key_file = new_key(a.out, "vllm-test")
    bundle = a.bundle.stem
    problems, summary, procs = [], {}, []
    vllm = Vllm(a, a.vllm_key)
    try:
        vllm.start()
        env = dict(os.environ, MAILSORT_REMOTE_API_KEY=a.vllm_key)
        procs.append(start_backend(a, a.onnx_port, key_file, "onnx", ["--device", "cpu"]))
        t = time.monotonic()
        procs.append(start_backend(a, a.remote_port, key_file, "remote", remote_flags(a), env=env))
        summary["remote_backend_ready_s"] = round(time.monotonic() - t, 1)
        _, h, _, _ = request(a.remote_port, "GET", "/health", key=key)
        summary["health"] = h
        if (h or {}).get("remote", {}).get("breaker", {}).get("state") != "closed":
            problems.append(f"/health does not show a closed breaker at start: {h}")

        procs.append(start_backend(a, a.rerank_port, key_file, "remote-rerank",
                                   remote_flags(a, more=["--remote-api", "rerank"]), env=env))

        emails = forwarded_emails(a.mailsort, a.bundle, a.test, only_forwarded=True)
        log(f"parity on {min(len(emails), a.parity_emails)} forwarded e-mails")
        p = parity(a, key, emails[: a.parity_emails], bundle, [a.onnx_port, a.remote_port, a.rerank_port])
        summary["parity"] = {"emails": p["emails"], "pairs": p["pairs"], "onnx_pairs_per_s": p["onnx_pairs_per_s"],
                             "vllm_score": p[str(a.remote_port)], "vllm_rerank": p[str(a.rerank_port)]}
        log(f"parity: {summary['parity']}")
        # Both run FP32 on the same weights; what may differ is that vLLM
        # re-tokenizes the cut text, its kernels, and (for /v1/rerank) the
        # sigmoid it applies and that is inverted here.
        for name in ("vllm_score", "vllm_rerank"):
            q = summary["parity"][name]
            if q["same_top_label"] < 0.99:
                problems.append(f"{name}: another label on {1 - q['same_top_label']:.1%} of e-mails")
            if q["p99_abs_logit_diff"] > 0.05:
                problems.append(f"{name}: p99 |logit difference| {q['p99_abs_logit_diff']} is over 0.05")

        log("end to end through the ONNX backend…")
        onnx, onnx_labels = end_to_end(a, key, a.onnx_port, "onnx")
        log(f"onnx: {onnx}")
        log("end to end through the remote backend (vLLM)…")
        remote, remote_labels = end_to_end(a, key, a.remote_port, "remote")
        log(f"remote: {remote}")
        agree = sum(onnx_labels[k] == remote_labels.get(k) for k in onnx_labels) / max(len(onnx_labels), 1)
        summary["end_to_end"] = {"onnx": onnx, "remote": remote, "same_label": round(agree, 4)}
        for name, r in (("onnx", onnx), ("remote", remote)):
            if r["reranked"] != r["forwarded"] or r["unanswered"]:
                problems.append(f"{name}: {r['reranked']} of {r['forwarded']} forwarded e-mails reranked")
        if agree < 0.995:
            problems.append(f"the two paths agree on only {agree:.2%} of decisions")

        summary["faults"] = faults(a, key, vllm, emails, bundle, problems)
        summary["bad_config"] = bad = bad_configs(a, key_file)
        for b in bad:
            log(f"bad config, {b['case']}: exit {b['exit']} after {b['seconds']} s: {b['error']}")
            if not b["ok"]:
                problems.append(f"bad config '{b['case']}' did not stop start-up with its error: {b}")
    finally:
        for p_ in procs:
            p_.terminate()
        for p_ in procs:
            try:
                p_.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p_.kill()
        vllm.kill()
    finish(a.out / "summary.json", summary, problems, "PASSED: remote reranker on a real vLLM")


if __name__ == "__main__":
    main()
