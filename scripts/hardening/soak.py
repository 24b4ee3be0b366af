#!/usr/bin/env python3
"""Soak: a steady stream of e-mails into a real mailsort-backend on loopback.

E-mails arrive at --rate a second (Poisson, open loop: a slow answer does
not slow the arrivals). --classify-share of them come from clients without
an edge and go whole to /v1/classify, where the backend's own edge decides
and forwards what its gate sends on. The rest arrive at edges, which decide
most alone and send --forward-share of them to /v1/rerank with the edge's
candidates. Every request carries one e-mail.

Reports errors (any answer but 200, or none), p50/p99 latency from arrival
per endpoint, the rate held, and the backend's RSS at start, end and peak.
Exits 1 on any error, or when RSS grew by more than --max-rss-growth-mb
between the first and the last minute.

usage: soak.py --seconds 600 --rate 40 --out DIR (paths from soak.sh)
"""
import argparse
import http.client
import json
import queue
import random
import signal
import subprocess
import threading
import time

from harness import add_backend_args, backend_command, finish, forwarded_emails, log, new_key, wait_ready

DEADLINE_MS = 5000


def rss_mb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=40, help="incoming e-mails per second")
    # Most mail reaches the backend through edges (CLI, extension, Worker),
    # which forward 15%; a tenth comes from clients without one.
    ap.add_argument("--classify-share", type=float, default=0.1)
    ap.add_argument("--forward-share", type=float, default=0.15)
    ap.add_argument("--max-rss-growth-mb", type=float, default=200)
    add_backend_args(ap, port=18612)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    key, key_file = new_key(a.out, "soak")
    rows = [json.loads(l) for l in open(a.test)]
    # What edges forward: the e-mails the gate forwards, with its candidates.
    rerank_bodies = forwarded_emails(a.mailsort, a.bundle, a.test, only_forwarded=True)
    if not rerank_bodies:
        raise SystemExit("the gate forwards none of the test e-mails: nothing to send to /v1/rerank")
    log_path = a.out / "backend.log"
    backend = subprocess.Popen(backend_command(a, key_file), stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
    wait_ready(a.port, backend, log_path)

    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    jobs = queue.Queue()
    results = []
    lock = threading.Lock()

    def worker():
        conn = None
        while True:
            job = jobs.get()
            if job is None:
                return
            due, endpoint, body = job
            status, err = None, None
            try:
                reused = conn is not None
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=DEADLINE_MS / 1000 + 1)
                try:
                    conn.request("POST", endpoint, body=body, headers=headers)
                    r = conn.getresponse()
                except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                    # The server closes keep-alive connections idle past its
                    # header timeout; as any HTTP client does, send again on
                    # a new one (the request was never read).
                    if not reused:
                        raise
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=DEADLINE_MS / 1000 + 1)
                    conn.request("POST", endpoint, body=body, headers=headers)
                    r = conn.getresponse()
                data = r.read()
                status = r.status
                if status == 200:
                    n = len(json.loads(data).get("results", []))
                    if n != 1:
                        status, err = None, f"{n} results for 1 e-mail"
            except (OSError, http.client.HTTPException, ValueError) as e:
                err = type(e).__name__
                if conn is not None:
                    conn.close()
                conn = None
            with lock:
                results.append((due, endpoint, status, err, time.monotonic() - due))

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(48)]
    for w in workers:
        w.start()
    rss = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            rss.append((time.monotonic(), rss_mb(backend.pid)))
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rng = random.Random(7)
    log(f"soak: {a.rate:g} e-mails/s for {a.seconds:g} s ({a.classify_share:.0%} to /v1/classify, "
        f"{a.forward_share:.0%} of the rest forwarded to /v1/rerank)")
    t0 = time.monotonic()
    due = t0
    n = {"arrived": 0, "classify": 0, "rerank": 0, "edge_alone": 0}
    next_report = t0 + 60
    while True:
        due += rng.expovariate(a.rate)
        if due - t0 > a.seconds:
            break
        time.sleep(max(0.0, due - time.monotonic()))
        n["arrived"] += 1
        i = n["arrived"]
        if rng.random() < a.classify_share:
            r = rows[i % len(rows)]
            body = {"bundle": "support", "deadline_ms": DEADLINE_MS, "emails": [
                {"id": f"s{i}", "subject": r.get("subject", ""), "body": r.get("body", "")}]}
            jobs.put((due, "/v1/classify", json.dumps(body)))
            n["classify"] += 1
        elif rng.random() < a.forward_share:
            e = rerank_bodies[i % len(rerank_bodies)]
            body = {"bundle": "support", "deadline_ms": DEADLINE_MS, "emails": [{"id": f"s{i}", **e}]}
            jobs.put((due, "/v1/rerank", json.dumps(body)))
            n["rerank"] += 1
        else:
            n["edge_alone"] += 1
        if time.monotonic() > next_report:
            next_report += 60
            with lock:
                done = len(results)
                errs = sum(1 for r in results if r[2] != 200)
            log(f"{time.monotonic() - t0:.0f} s: {n['arrived']} arrived, {done} answered, {errs} errors, "
                f"backlog {jobs.qsize()}, RSS {rss[-1][1]:.0f} MB")
    for _ in workers:
        jobs.put(None)
    for w in workers:
        w.join(timeout=DEADLINE_MS / 1000 + 5)
    elapsed = time.monotonic() - t0
    stop.set()
    sampler.join()
    rss_end = rss_mb(backend.pid)
    backend.send_signal(signal.SIGTERM)
    backend.wait(timeout=60)

    summary = {"seconds": a.seconds, "rate": a.rate, "arrivals": n, "held_per_s": n["arrived"] / elapsed}
    errors = {}
    for _, endpoint, status, err, _ in results:
        if status != 200:
            k = f"{endpoint} {status or err}"
            errors[k] = errors.get(k, 0) + 1
    summary["errors"] = errors
    summary["unanswered"] = n["classify"] + n["rerank"] - len(results)
    for endpoint in ("/v1/classify", "/v1/rerank"):
        lat = [r[4] * 1000 for r in results if r[1] == endpoint and r[2] == 200]
        summary[endpoint] = {"requests": sum(1 for r in results if r[1] == endpoint),
                             "p50_ms": pct(lat, 50), "p99_ms": pct(lat, 99), "max_ms": max(lat) if lat else None}
    samples = [m for _, m in rss if m is not None]
    first = [m for t, m in rss if m is not None and t - t0 < 60]
    last = [m for t, m in rss if m is not None and t - t0 > elapsed - 60]
    summary["rss_mb"] = {"start": samples[0] if samples else None, "end": rss_end,
                         "peak": max(samples) if samples else None,
                         "growth_first_to_last_minute": (max(last) - max(first)) if first and last else None}
    problems = []
    if errors or summary["unanswered"]:
        problems.append(f"errors {errors}, unanswered {summary['unanswered']}")
    g = summary["rss_mb"]["growth_first_to_last_minute"]
    if g is not None and g > a.max_rss_growth_mb:
        problems.append(f"RSS grew {g:.0f} MB")
    finish(a.out / "soak.json", summary, problems, "soak: no error")


if __name__ == "__main__":
    main()
