#!/usr/bin/env python3
"""Faults injected into a real mailsort-backend while clients use it.

The clients, all at once, over loopback:
  - `mailsort eval --backend` in a loop over a test subset;
  - `mailsort sort`, following a Maildir that new mail keeps arriving in;
  - an edge client on /v1/rerank, one try per e-mail as the Worker does:
    when the backend cannot answer, the edge's label stands, provisional;
  - a client without an edge on /v1/classify, which retries until answered.

The faults, in turn, while they run: kill -9 and restart; SIGSTOP past the
clients' deadline, then SIGCONT; a burst of large requests that fills the
queue; a restart onto a corrupted model file (refused), then the good one;
a graceful restart (SIGTERM) under load.

Then every client must have ended every e-mail with exactly one final
decision: nothing lost, nothing twice. The backend must have refused the
corrupted model with a clear error, and its in-flight gauge must be back
to zero. The summary goes to OUT/faults.json; the exit code is 1 on any
loss or broken promise.

usage: faults.py --seconds 60 --out DIR (paths from scripts/hardening/faults.sh)
"""
import argparse
import http.client
import json
import os
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

from harness import add_backend_args, backend_command, finish, forwarded_emails, log, new_key, wait_ready

DEADLINE_MS = 2000
# A client gives up on a request a second past its deadline.
CLIENT_TIMEOUT_S = DEADLINE_MS / 1000 + 1.0
TRANSIENT = {429, 502, 503, 504}


class Backend:
    """One backend process at a time on a fixed port; restarts keep the port."""

    def __init__(self, a):
        self.a = a
        self.proc = None
        self.starts = 0
        self.stalls = []  # (from, to) monotonic times the process was stopped

    def start(self, reranker_dir=None, expect_ready=True):
        self.starts += 1
        log_path = self.a.out / f"backend-{self.starts}.log"
        # One thread each, so that the clients beside it keep a core.
        cmd = backend_command(self.a, self.a.key_file, reranker_dir, ["--threads", "1", "--edge-workers", "1"])
        self.proc = subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
        if expect_ready:
            wait_ready(self.a.port, self.proc, log_path)
        return self.proc

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def term(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise SystemExit("backend did not stop within 60 s of SIGTERM")

    def stall(self, seconds):
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGSTOP)
        time.sleep(seconds)
        self.proc.send_signal(signal.SIGCONT)
        self.stalls.append((t0, time.monotonic()))


def post(port, key, path, body, timeout=CLIENT_TIMEOUT_S):
    """(status or None, parsed JSON or None, seconds, what went wrong)."""
    t = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        c.request("POST", path, body=json.dumps(body),
                  headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        r = c.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data)
        except ValueError:
            parsed = None
        return r.status, parsed, time.monotonic() - t, None
    except (OSError, http.client.HTTPException) as e:
        return None, None, time.monotonic() - t, type(e).__name__


class Outcomes:
    """Final decisions per client and e-mail id: exactly one each."""

    def __init__(self):
        self.lock = threading.Lock()
        self.final = {}  # (client, id) -> list of how it ended
        self.requests = []  # (client, start, seconds, status, error)

    def end(self, client, eid, how):
        with self.lock:
            self.final.setdefault((client, eid), []).append(how)

    def request(self, client, start, seconds, status, error):
        with self.lock:
            self.requests.append((client, start, seconds, status, error))


def rerank_client(a, emails, stop, out):
    """The Worker's way: one try; on failure the edge's label stands."""
    rng = random.Random(1)
    n = 0
    while not stop.is_set():
        batch = [emails[(n + i) % len(emails)] for i in range(rng.randint(1, 4))]
        n += len(batch)
        ids = [f"r{n}-{i}" for i in range(len(batch))]
        body = {"bundle": "support", "deadline_ms": DEADLINE_MS, "emails": [
            {"id": eid, "text": e["text"], "candidates": e["candidates"]} for eid, e in zip(ids, batch)]}
        t = time.monotonic()
        st, js, secs, err = post(a.port, a.key, "/v1/rerank", body)
        out.request("rerank", t, secs, st, err)
        ok = st == 200 and js and len(js.get("results", [])) == len(ids)
        for eid in ids:
            out.end("rerank", eid, "backend" if ok else "edge-provisional")
        time.sleep(0.1)


def classify_client(a, emails, stop, drained, out):
    """No edge: retries with back-off until the backend answers."""
    n = 0
    pending = []
    while not (drained.is_set() and not pending):
        if not stop.is_set() and len(pending) < 8:
            for _ in range(2):
                e = emails[n % len(emails)]
                n += 1
                pending.append((f"c{n}", e))
        batch = pending[:4]
        if not batch:
            time.sleep(0.1)
            continue
        body = {"bundle": "support", "deadline_ms": DEADLINE_MS, "emails": [
            {"id": eid, "subject": e["subject"], "body": e["body"]} for eid, e in batch]}
        t = time.monotonic()
        st, js, secs, err = post(a.port, a.key, "/v1/classify", body)
        out.request("classify", t, secs, st, err)
        if st == 200 and js:
            done = {r["id"] for r in js.get("results", []) if r.get("decision")}
            for eid, _ in batch:
                if eid in done:
                    out.end("classify", eid, "answered")
            pending = [p for p in pending if p[0] not in done]
            time.sleep(0.2)
        elif st is not None and st not in TRANSIENT:
            for eid, _ in batch:
                out.end("classify", eid, f"refused {st}")
            pending = pending[len(batch):]
        else:
            time.sleep(0.5)


def eval_loop(a, stop, out, results):
    """`mailsort eval --backend` over and over; each run's decisions checked."""
    ids = [json.loads(l)["id"] for l in open(a.eval_set)]
    run = 0
    while not stop.is_set():
        run += 1
        dec = a.out / f"eval-{run}.jsonl"
        p = subprocess.run([a.mailsort, "eval", "--bundle", str(a.bundle), "--test", str(a.eval_set),
                            "--backend", f"http://127.0.0.1:{a.port}", "--backend-retry-s", "30",
                            "--decisions-out", str(dec), "--json", "--threads", "1"],
                           env={**os.environ, "MAILSORT_API_KEY": a.key}, capture_output=True, text=True)
        if p.returncode != 0:
            results.append({"run": run, "rc": p.returncode, "error": p.stderr.strip().splitlines()[-1:]})
            continue
        report = json.loads(p.stdout)
        got = [json.loads(l)["id"] for l in open(dec)]
        e2e = report.get("end_to_end") or {}
        results.append({"run": run, "rc": 0, "decisions": len(got), "unique": len(set(got)),
                        "missing": len(set(ids) - set(got)), "reranked": e2e.get("reranked"),
                        "unanswered": e2e.get("unanswered")})
        for eid in got:
            out.end(f"eval-{run}", eid, "decided")


def deliver(a, staging, inbox, stop):
    """New mail into the sorter's INBOX, as a delivery agent writes it."""
    files = sorted(os.listdir(staging / "new"))
    for i, f in enumerate(files):
        if stop.is_set():
            break
        os.rename(staging / "new" / f, inbox / "new" / f)
        time.sleep(a.seconds / max(len(files), 1) * 0.8)
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=60)
    add_backend_args(ap, port=18611)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    a.key, a.key_file = new_key(a.out, "faults")

    rows = [json.loads(l) for l in open(a.test)]
    a.eval_set = a.out / "eval-set.jsonl"
    a.eval_set.write_text("".join(json.dumps(r) + "\n" for r in rows[:200]))
    # The edge's candidates for the rerank client, as an edge would send them.
    rerank_emails = forwarded_emails(a.mailsort, a.bundle, a.eval_set, only_forwarded=False)
    # The sorter's mail: the rest of the test rows, exported as Maildir files.
    mail_rows = a.out / "mail.jsonl"
    mail_rows.write_text("".join(json.dumps(r) + "\n" for r in rows[200:200 + int(4 * a.seconds)]))
    staging, inbox = a.out / "staging", a.out / "maildir"
    for d in (staging, inbox):
        shutil.rmtree(d, ignore_errors=True)
    subprocess.run([a.mailsort, "export", "--input", str(mail_rows), "--format", "inbox", "--out", str(staging),
                    "--ids-out", str(a.out / "ids.tsv")], check=True, capture_output=True)
    (a.out / "ids").write_text("".join(l.split("\t")[0] + "\n" for l in open(a.out / "ids.tsv")))
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    # A copy of the reranker with one byte of its weights changed.
    bad = a.out / "reranker-corrupt"
    shutil.rmtree(bad, ignore_errors=True)
    bad.mkdir()
    for f in a.reranker_dir.iterdir():
        if f.is_file():
            if f.name.startswith("model_") and f.suffix == ".onnx":
                shutil.copy(f, bad / f.name)
                with open(bad / f.name, "r+b") as h:
                    h.seek(os.path.getsize(bad / f.name) // 2)
                    b = h.read(1)
                    h.seek(-1, 1)
                    h.write(bytes([b[0] ^ 0xFF]))
            else:
                os.symlink(f.resolve(), bad / f.name)

    backend = Backend(a)
    log("starting the backend")
    backend.start()
    out = Outcomes()
    stop, drained = threading.Event(), threading.Event()
    eval_runs = []
    sort_log = a.out / "sort.jsonl"
    sorter = subprocess.Popen([a.mailsort, "sort", str(inbox), "--bundle", str(a.bundle),
                               "--backend", f"http://127.0.0.1:{a.port}", "--poll-seconds", "1",
                               "--log", str(sort_log), "--sort-batch", "8", "--threads", "1"],
                              env={**os.environ, "MAILSORT_API_KEY": a.key},
                              stdout=open(a.out / "sort.out", "wb"), stderr=subprocess.STDOUT)
    threads = [threading.Thread(target=rerank_client, args=(a, rerank_emails, stop, out)),
               threading.Thread(target=classify_client, args=(a, rows, stop, drained, out)),
               threading.Thread(target=eval_loop, args=(a, stop, out, eval_runs)),
               threading.Thread(target=deliver, args=(a, staging, inbox, stop))]
    for t in threads:
        t.start()

    faults = []
    t0 = time.monotonic()

    def at(frac):
        time.sleep(max(0.0, t0 + frac * a.seconds - time.monotonic()))

    at(0.10)
    log("fault: kill -9, restart")
    backend.kill9()
    time.sleep(2)
    backend.start()
    faults.append("kill -9, restarted")
    at(0.30)
    log(f"fault: SIGSTOP for {DEADLINE_MS / 1000 + 2:.0f} s, past the deadline")
    backend.stall(DEADLINE_MS / 1000 + 2)
    faults.append(f"stalled {DEADLINE_MS / 1000 + 2:.0f} s (SIGSTOP), deadline {DEADLINE_MS} ms")
    at(0.45)
    log("fault: fill the queue (30 requests of 64 e-mails at once)")
    burst = [{"bundle": "support", "deadline_ms": DEADLINE_MS, "emails": [
        {"id": f"b{j}-{i}", "subject": r.get("subject", ""), "body": r.get("body", "")}
        for i, r in enumerate(rows[:64])]} for j in range(30)]
    answers = []
    bt = [threading.Thread(target=lambda b=b: answers.append(post(a.port, a.key, "/v1/classify", b, 10)))
          for b in burst]
    for t in bt:
        t.start()
    for t in bt:
        t.join()
    burst_status = {}
    for st, _, secs, err in answers:
        burst_status[str(st or err)] = burst_status.get(str(st or err), 0) + 1
    burst_slowest = max(s for _, _, s, _ in answers)
    faults.append(f"queue filled: {burst_status}, slowest {burst_slowest:.1f} s")
    at(0.60)
    log("fault: restart onto a corrupted model file")
    backend.term()
    t = time.monotonic()
    p = backend.start(reranker_dir=bad, expect_ready=False)
    try:
        rc = p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    refused_in = time.monotonic() - t
    corrupt_log = (a.out / f"backend-{backend.starts}.log").read_text(errors="replace")
    corrupt_line = next((l for l in corrupt_log.splitlines() if "does not match" in l), "")
    backend.start()
    faults.append(f"corrupted model refused: rc {rc} after {refused_in:.1f} s")
    at(0.80)
    log("fault: graceful restart (SIGTERM) under load")
    backend.term()
    term_rc = backend.proc.returncode
    backend.start()
    faults.append(f"SIGTERM (rc {term_rc}), restarted")
    at(1.0)
    log("load stops; draining")
    stop.set()
    for t in threads[2:]:
        t.join()
    drained.set()
    threads[0].join()
    threads[1].join(timeout=90)
    # The sorter files what is left, then stops.
    t = time.monotonic()
    while time.monotonic() - t < 90 and os.listdir(inbox / "new"):
        time.sleep(0.5)
    time.sleep(3)
    sorter.send_signal(signal.SIGTERM)
    try:
        sorter.wait(timeout=30)
    except subprocess.TimeoutExpired:
        sorter.kill()
    check = subprocess.run([sys.executable, str(pathlib.Path(__file__).parents[1] / "test/mailbox_check.py"),
                            "--ids", str(a.out / "ids"), "--log", str(sort_log), "maildir", str(inbox)],
                           capture_output=True, text=True)
    sorter_check = json.loads(check.stdout) if check.stdout.strip() else {"error": check.stderr}
    delivered = len(open(a.out / "ids").read().split())
    in_flight = None
    try:
        c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=5)
        c.request("GET", "/metrics", headers={"Authorization": f"Bearer {a.key}"})
        for line in c.getresponse().read().decode().splitlines():
            if line.startswith("mailsort_in_flight_requests"):
                in_flight = float(line.split()[-1])
    except OSError:
        pass
    backend.term()

    problems = []
    twice = [k for k, v in out.final.items() if len(v) > 1]
    if twice:
        problems.append(f"{len(twice)} e-mails ended twice, e.g. {twice[:3]}")
    unanswered_classify = [k for k, v in out.final.items() if k[0] == "classify" and v != ["answered"]]
    if unanswered_classify:
        problems.append(f"{len(unanswered_classify)} /v1/classify e-mails refused: {unanswered_classify[:3]}")
    for r in eval_runs:
        if r["rc"] != 0:
            problems.append(f"eval run {r['run']} failed: {r['error']}")
        elif r["missing"] or r["unique"] != r["decisions"]:
            problems.append(f"eval run {r['run']}: {r['missing']} missing, {r['decisions'] - r['unique']} twice")
    if not eval_runs:
        problems.append("no eval run finished")
    if sorter_check.get("n_problems", 1) != 0:
        problems.append(f"sorter: {sorter_check}")
    if rc in (0, None) or not corrupt_line:
        problems.append(f"the corrupted model was not refused clearly (rc {rc}, line {corrupt_line!r})")
    if in_flight not in (0.0, None):
        problems.append(f"in-flight gauge at {in_flight} after the run")

    def stalled(start, secs):
        return any(s0 - CLIENT_TIMEOUT_S <= start <= s1 for s0, s1 in backend.stalls)

    # An answer (any status) must come within the deadline plus a second,
    # unless the process was stopped while the request was open.
    late = [r for r in out.requests if r[3] is not None and r[2] > CLIENT_TIMEOUT_S + 0.5 and not stalled(r[1], r[2])]
    if late:
        problems.append(f"{len(late)} answers later than the deadline + 1 s, e.g. {late[:3]}")
    statuses = {}
    for client, _, _, st, err in out.requests:
        k = f"{client} {st or err}"
        statuses[k] = statuses.get(k, 0) + 1
    bad_status = {k: v for k, v in statuses.items() if k.split()[1].isdigit() and int(k.split()[1]) not in TRANSIENT | {200}}
    if bad_status:
        problems.append(f"answers other than 200 and 429/502/503/504: {bad_status}")
    ends = {}
    for (client, _), how in out.final.items():
        key = f"{client.split('-')[0]} {how[0]}"
        ends[key] = ends.get(key, 0) + 1
    summary = {
        "seconds": a.seconds, "faults": faults, "requests": statuses, "final_decisions": ends,
        "eval_runs": eval_runs, "sorter": {"delivered": delivered, **sorter_check},
        "corrupt_model_error": corrupt_line.strip()[-300:], "in_flight_after": in_flight,
        "lost": len(unanswered_classify) + sum(r.get("missing", 0) for r in eval_runs) + sorter_check.get("n_problems", 0),
    }
    finish(a.out / "faults.json", summary, problems, "faults: every e-mail ended exactly once in every client")


if __name__ == "__main__":
    main()
