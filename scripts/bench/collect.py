"""Gathers one benchmark run (scripts/bench/all.sh's parts under OUT) into
the results file `mailsort plan` reads (layout: crates/capacity/src/results.rs)
and a Markdown summary beside it.

Usage: collect.py OUT RESULTS_DIR [--quick] [--commit SHA]
Prints the results file's path.
"""

import argparse
import datetime
import glob
import json
import os
import re
import statistics
import sys


def load(path):
    with open(path) as f:
        return json.load(f)


def slug(text):
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def oha(path):
    """(answered per second, p50 ms, p99 ms, 429s, 504s) of one oha run."""
    d = load(path)
    codes = d.get("statusCodeDistribution", {})
    total = d["summary"]["total"]
    lat = d.get("latencyPercentilesSuccessful") or d.get("latencyPercentiles") or {}
    ms = lambda v: 1000.0 * v if v is not None else 0.0
    return (codes.get("200", 0) / total if total else 0.0, ms(lat.get("p50")), ms(lat.get("p99")),
            codes.get("429", 0), codes.get("504", 0))


def histograms(path):
    """Prometheus text: {(metric, stage): {le: cumulative count}}."""
    out = {}
    if not os.path.exists(path):
        return out
    pat = re.compile(r'^(\w+)_bucket\{(.*)\} (\S+)$')
    for line in open(path):
        m = pat.match(line.strip())
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        key = (m.group(1), labels.get("stage", ""))
        le = float("inf") if labels["le"] == "+Inf" else float(labels["le"])
        out.setdefault(key, {})[le] = float(m.group(3))
    return out


def counter(path, name):
    if not os.path.exists(path):
        return 0.0
    m = re.search(rf"^{re.escape(name)} (\S+)$", open(path).read(), re.M)
    return float(m.group(1)) if m else 0.0


def quantiles(before, after, metric, stage):
    """p50/p99 (ms) of the observations between two scrapes, interpolated
    inside the histogram's buckets."""
    a = after.get((metric, stage), {})
    b = before.get((metric, stage), {})
    bounds = sorted(a)
    counts = [a[le] - b.get(le, 0.0) for le in bounds]
    total = counts[-1] if counts else 0.0
    if total <= 0:
        return None

    def q(p):
        target = p * total
        prev_le, prev_c = 0.0, 0.0
        for le, c in zip(bounds, counts):
            if c >= target:
                if le == float("inf"):
                    return 1000.0 * prev_le
                frac = (target - prev_c) / (c - prev_c) if c > prev_c else 1.0
                return 1000.0 * (prev_le + frac * (le - prev_le))
            prev_le, prev_c = le, c
        return 1000.0 * prev_le

    return {"p50_ms": q(0.5), "p99_ms": q(0.99)}


def flag(flags, name, default):
    m = re.search(rf"--{name} (\S+)", flags)
    return m.group(1) if m else default


def backend_settings(d, candidates):
    rows = []
    path = os.path.join(d, "settings.jsonl")
    if not os.path.exists(path):
        return rows
    for line in open(path):
        s = json.loads(line)
        name = s["name"]
        sat = os.path.join(d, f"{name}-saturate.json")
        if not os.path.exists(sat):
            continue
        metrics = os.path.join(d, f"{name}-metrics.txt")
        pairs_n = counter(metrics, "mailsort_batch_pairs_count")
        tokens_n = counter(metrics, "mailsort_batch_tokens_count")
        rows.append({
            "name": name,
            "device": s.get("device", "cpu"),
            "precision": flag(s["flags"], "precision", "fp16" if s.get("device") == "cuda" else "fp32"),
            "token_cap": int(flag(s["flags"], "token-cap", "128")),
            "batching": "--no-batching" not in s["flags"],
            "candidates": candidates,
            "saturated_emails_per_s": oha(sat)[0],
            "mean_pairs_per_call": counter(metrics, "mailsort_batch_pairs_sum") / pairs_n if pairs_n else 0.0,
            "mean_padded_tokens_per_call": counter(metrics, "mailsort_batch_tokens_sum") / tokens_n if tokens_n else 0.0,
        })
    return rows


def load_curve(d):
    points = []
    for path in glob.glob(os.path.join(d, "sweep-*.json")):
        rate = float(re.search(r"sweep-([0-9.]+)\.json$", path).group(1))
        ok, p50, p99, refused, late = oha(path)
        before = histograms(path.replace(".json", "-before.txt"))
        after = histograms(path.replace(".json", "-after.txt"))
        point = {"offered_per_s": rate, "answered_per_s": ok, "latency": {"p50_ms": p50, "p99_ms": p99},
                 "refused": refused, "late": late}
        for stage in ("queue", "tokenize", "model"):
            point[stage] = quantiles(before, after, "mailsort_stage_seconds", stage)
        points.append(point)
    return sorted(points, key=lambda p: p["offered_per_s"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("results_dir")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--commit")
    ap.add_argument("--candidates", type=int, default=5)
    a = ap.parse_args()
    machine = load(os.path.join(a.out, "machine.json"))
    r = {"schema": 1, "machine": machine, "date": datetime.date.today().isoformat(), "quick": a.quick,
         "commit": a.commit, "edge": [], "stages": None, "browser": None, "backend": [],
         "load_curve": [], "batching_ab": None, "gpu": None}
    for path in sorted(glob.glob(os.path.join(a.out, "edge", "*-cap*.json"))):
        m = re.search(r"([^/]+)-cap(\d+)\.json$", path)
        d = load(path)
        rate = {(row["engine"], row["batch"]): row["emails_per_s"] for row in d["rows"]}
        r["edge"].append({"set": m.group(1), "token_cap": int(m.group(2)), "emails": d["emails"],
                          "mean_tokens": d["mean_tokens"], "ort_threads": d["ort_threads"],
                          "tract_batch1": rate[("tract", 1)], "ort_batch1": rate[("onnxruntime", 1)],
                          "tract_batch32": rate[("tract", 32)], "ort_batch32": rate[("onnxruntime", 32)]})
        for engine, key in (("tract-w8a8", "tract_w8a8"), ("onnxruntime-int8", "ort_dynamic_int8")):
            for batch in (1, 32):
                if (engine, batch) in rate:
                    r["edge"][-1][f"{key}_batch{batch}"] = rate[(engine, batch)]
    stages = os.path.join(a.out, "stages.json")
    if os.path.exists(stages):
        r["stages"] = load(stages)
    browser = os.path.join(a.out, "browser.json")
    if os.path.exists(browser):
        b = load(browser)
        r["browser"] = {"emails": b["emails"], "token_cap": b["tokenCap"], "chromium": str(b["chromium"]),
                        "threads": int(b["threads"]), "ms_per_email": b["msPerEmail"]}
    backend = os.path.join(a.out, "backend")
    r["backend"] = backend_settings(backend, a.candidates)
    r["load_curve"] = load_curve(backend)
    ab = sorted(glob.glob(os.path.join(backend, "ab-batching-*.json")))
    if ab:
        bat = [oha(p)[0] for p in ab]
        single = [oha(p.replace("ab-batching-", "ab-single-"))[0] for p in ab]
        r["batching_ab"] = {"batching": bat, "single": single,
                            "median_ratio": statistics.median(x / y for x, y in zip(bat, single) if y > 0)}
    gpu = os.path.join(a.out, "gpu")
    if os.path.exists(os.path.join(gpu, "fp16-vs-fp32.txt")):
        r["backend"] += backend_settings(gpu, a.candidates)
        text = open(os.path.join(gpu, "fp16-vs-fp32.txt")).read()
        m = re.search(r"(\d+) e-mails: max \|score diff\| (\S+), same label (\d+)/(\d+)", text)
        card = open(os.path.join(gpu, "card.txt")).read().strip().split(",")[0]
        if m:
            r["gpu"] = {"card": card, "fp16_vs_fp32_max_abs_diff": float(m.group(2)),
                        "same_label": int(m.group(3)), "emails": int(m.group(4))}

    name = slug(machine["cpu"]) + f"-{machine['cores']}c"
    if machine.get("gpu"):
        name += "-" + slug(machine["gpu"]) + (f"-driver-{slug(machine['driver'])}" if machine.get("driver") else "")
    os.makedirs(a.results_dir, exist_ok=True)
    path = os.path.join(a.results_dir, f"{name}-{r['date']}.json")
    with open(path, "w") as f:
        json.dump(r, f, indent=2)
        f.write("\n")
    with open(path[: -len(".json")] + ".md", "w") as f:
        f.write(summary(r))
    print(path)


def summary(r):
    m = r["machine"]
    lines = [f"# Benchmarks: {m['cpu']}, {m['cores']} cores, {m['memory_gib']:.0f} GiB"
             + (f", {m['gpu']} (driver {m.get('driver')})" if m.get("gpu") else ", no GPU"),
             "", f"{r['date']}, {'quick' if r['quick'] else 'full'} run, commit {r.get('commit') or '?'}. "
             "Every ratio compares two things measured side by side in this run.", ""]
    if r["edge"]:
        lines += ["## Native edge: tract against ONNX Runtime (same INT8 file, e-mails/s)", "",
                  "| set | token cap | e-mails | mean tokens | tract b1 | ORT b1 | tract/ORT b1 | tract b32 | ORT b32 | tract/ORT b32 |",
                  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for e in r["edge"]:
            lines.append(f"| {e['set']} | {e['token_cap']} | {e['emails']} | {e['mean_tokens']:.0f} | "
                         f"{e['tract_batch1']:.1f} | {e['ort_batch1']:.1f} | {e['tract_batch1'] / e['ort_batch1']:.2f}x | "
                         f"{e['tract_batch32']:.1f} | {e['ort_batch32']:.1f} | {e['tract_batch32'] / e['ort_batch32']:.2f}x |")
        lines.append("")
        int8 = [e for e in r["edge"] if e.get("ort_dynamic_int8_batch1")]
        if int8:
            w8 = lambda e, b: f"{e[f'tract_w8a8_batch{b}']:.1f}" if e.get(f"tract_w8a8_batch{b}") else "left out"
            lines += ["## Native edge engines that compute in INT8, against the edge on tract (e-mails/s)", "",
                      "onnxruntime-int8: ONNX Runtime on its dynamic-INT8 file; tract-w8a8: tract on the W8A8 file "
                      "(left out without AVX-512 VNNI).", "",
                      "| set | token cap | onnxruntime-int8 b1 | / tract b1 | onnxruntime-int8 b32 | / tract b32 | tract-w8a8 b1 | tract-w8a8 b32 |",
                      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
            for e in int8:
                lines.append(f"| {e['set']} | {e['token_cap']} | {e['ort_dynamic_int8_batch1']:.1f} | "
                             f"{e['ort_dynamic_int8_batch1'] / e['tract_batch1']:.2f}x | {e['ort_dynamic_int8_batch32']:.1f} | "
                             f"{e['ort_dynamic_int8_batch32'] / e['tract_batch32']:.2f}x | {w8(e, 1)} | {w8(e, 32)} |")
            lines.append("")
    if r["stages"]:
        s = r["stages"]
        lines += [f"## Edge layers, one e-mail at a time ({s['emails']} e-mails of {s['set']}, ms)", "",
                  "| layer | p50 | p99 |", "| --- | ---: | ---: |"]
        for k in ("clean", "tokenize", "embed", "head_gate", "total"):
            lines.append(f"| {k} | {s[k]['p50_ms']:.3f} | {s[k]['p99_ms']:.3f} |")
        lines.append("")
    if r["browser"]:
        b = r["browser"]
        ms = b["ms_per_email"]
        lines += [f"## Chromium {b['chromium']}, {b['threads']} thread, {b['emails']} e-mails (ms per e-mail)", "",
                  "| engine | ms | against mailsort |", "| --- | ---: | ---: |"]
        for k, v in ms.items():
            lines.append(f"| {k} | {v:.1f} | {v / ms['mailsort']:.2f}x |")
        lines.append("")
    if r["backend"]:
        lines += ["## Backend over HTTP, saturated (forwarded e-mails/s, 5 candidates each)", "",
                  "| setting | device | precision | token cap | batching | e-mails/s | pairs/call | padded tokens/call |",
                  "| --- | --- | --- | ---: | --- | ---: | ---: | ---: |"]
        for b in r["backend"]:
            lines.append(f"| {b['name']} | {b['device']} | {b['precision']} | {b['token_cap']} | {'yes' if b['batching'] else 'no'} | "
                         f"{b['saturated_emails_per_s']:.1f} | {b['mean_pairs_per_call']:.1f} | {b['mean_padded_tokens_per_call']:.0f} |")
        by = {b["name"]: b["saturated_emails_per_s"] for b in r["backend"]}
        for a_, b_ in (("batching-cap128", "batching-cap256"), ("batching-cap384", "batching-cap256"),
                       ("fp16-batching", "fp32-batching")):
            if by.get(a_) and by.get(b_):
                lines.append(f"\n{a_} / {b_}: {by[a_] / by[b_]:.2f}x")
        lines.append("")
    if r["batching_ab"]:
        ab = r["batching_ab"]
        lines += [f"Batching against one e-mail per model call, alternating rounds: median {ab['median_ratio']:.2f}x "
                  f"(batching {', '.join(f'{x:.1f}' for x in ab['batching'])}; single {', '.join(f'{x:.1f}' for x in ab['single'])} e-mails/s)", ""]
    if r["load_curve"]:
        lines += ["## Latency against offered load (batching, token cap 256)", "",
                  "| offered/s | answered/s | p50 ms | p99 ms | 429 | 504 | queue p50/p99 | model p50/p99 |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        f = lambda q: f"{q['p50_ms']:.0f} / {q['p99_ms']:.0f}" if q else "-"
        for p in r["load_curve"]:
            lines.append(f"| {p['offered_per_s']:g} | {p['answered_per_s']:.1f} | {p['latency']['p50_ms']:.0f} | "
                         f"{p['latency']['p99_ms']:.0f} | {p['refused']} | {p['late']} | {f(p['queue'])} | {f(p['model'])} |")
        lines.append("")
    if r["gpu"]:
        g = r["gpu"]
        lines += [f"## {g['card']}: FP16 against FP32", "",
                  f"max |score diff| {g['fp16_vs_fp32_max_abs_diff']:.2e}, same label on {g['same_label']}/{g['emails']}", ""]
    else:
        lines += ["No GPU on this machine: `mailsort plan` marks its GPU figures as projections.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
