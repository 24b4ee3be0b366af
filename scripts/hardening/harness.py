"""What the fault run and the soak share: a backend process on loopback,
a fresh API key, and the edge's candidates for the e-mails it forwards."""
import http.client
import json
import pathlib
import os
import subprocess
import sys
import time


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def add_backend_args(ap, port):
    """The output folder, the port, and the paths common.sh passes
    (HARDENING_ARGS): binaries, bundle, test split, models."""
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--port", type=int, default=port)
    ap.add_argument("--mailsort", required=True)
    ap.add_argument("--backend-bin", required=True)
    ap.add_argument("--bundle", type=pathlib.Path, required=True)
    ap.add_argument("--test", type=pathlib.Path, required=True, help="labelled JSONL the clients send")
    ap.add_argument("--ort-lib", required=True)
    ap.add_argument("--reranker-dir", type=pathlib.Path, required=True)
    ap.add_argument("--model-dir", type=pathlib.Path, required=True)


def new_key(out, prefix):
    """A random API key, written to OUT/keys (mode 0600) for --api-keys-file."""
    key = f"{prefix}-key-" + os.urandom(8).hex()
    path = out / "keys"
    path.write_text(key + "\n")
    os.chmod(path, 0o600)
    return key, path


def backend_command(a, key_file, reranker_dir=None, extra=()):
    """mailsort-backend on 127.0.0.1:a.port serving a.bundle."""
    return [a.backend_bin, "--bind", f"127.0.0.1:{a.port}", "--bundle", str(a.bundle),
            "--api-keys-file", str(key_file), "--reranker-dir", str(reranker_dir or a.reranker_dir),
            "--model-dir", str(a.model_dir), "--ort-lib", a.ort_lib, *extra]


def ready(port):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", "/ready")
        r = c.getresponse()
        r.read()
        return r.status == 200
    except OSError:
        return False


def wait_ready(port, proc, log_path, timeout=120):
    """Until /ready answers 200; exits when the process dies first."""
    t = time.monotonic()
    while time.monotonic() - t < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"backend exited with {proc.returncode}: see {log_path}")
        if ready(port):
            return
        time.sleep(0.2)
    raise SystemExit(f"backend not ready after {timeout} s: see {log_path}")


def forwarded_emails(mailsort, bundle, jsonl, only_forwarded):
    """The edge's decisions on JSONL rows as /v1/rerank e-mails: the text and
    the candidates with their probabilities (only what the gate forwards,
    when asked)."""
    rows = {r["id"]: r for r in map(json.loads, open(jsonl))}
    p = subprocess.run([mailsort, "classify", "--bundle", str(bundle), str(jsonl)],
                       capture_output=True, text=True, check=True)
    out = []
    for d in map(json.loads, filter(str.strip, p.stdout.splitlines())):
        if not d.get("candidates") or (only_forwarded and d.get("decided_by") != "backend"):
            continue
        r = rows[d["id"]]
        out.append({"text": (r.get("subject", "") + "\n" + r.get("body", ""))[:4000],
                    "candidates": [{"label": c["label"], "probability": c["probability"]}
                                   for c in d["candidates"]]})
    return out


def finish(path, summary, problems, passed):
    """Writes the summary (with its problems) to PATH and stdout; exits 1 on
    any problem, else logs PASSED."""
    summary["problems"] = problems
    path.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if problems:
        log("FAIL: " + "; ".join(problems))
        sys.exit(1)
    log(passed)
