"""The table of scripts/eval/sets.sh: one row per set, from the JSON files
it wrote (SET.edge.json, SET.default.json, SET.fused.json, SET.kept.fusion.json
or SET.fusion.json, SET.second-opinion.report.json). With --readme, the same table replaces the
block between the results markers of that file.

Usage: summary.py DIR SECONDS RERANKER_DIR SET... [--readme README.md]
"""

import json
import os
import re
import sys
import time

BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def pct(x):
    return f"{100 * x:.2f}"


def trained_on(reranker_dir):
    """The sets a reranker's training candidates came from, read from its
    manifest's source folder (None when that cannot be told)."""
    try:
        manifest = json.load(open(os.path.join(reranker_dir, "manifest.json")))
        folder = re.match(r"folder (\S+) ", manifest["source"]).group(1)
        card = json.load(open(os.path.join(folder, "mailsort_reranker.json")))
        files = {d["file"].split(".cand-train")[0] for d in card["data"]}
        known = set(os.listdir(os.environ.get("MAILSORT_DATASETS", "../shared/datasets")))
    except (OSError, KeyError, AttributeError, ValueError):
        return None
    # Candidate files named after the sets they came from; any other name
    # (a per-taxonomy run's PREFIX) cannot be told apart.
    return files if files <= known else None


def fit_name(v):
    return {
        "fused": "reranker" + (" + second opinion" if v.get("head_weight") else ""),
        "edge_head": "second opinion",
        "edge_only": "edge only",
    }[v["mode"]]


def fusion_file(w, s):
    """The fusion the second backend served: the kept bundle's where the
    fit also set what the edge keeps (sets.sh's default), else the bundle's."""
    kept = f"{w}/{s}.kept.fusion.json"
    return kept if os.path.exists(kept) else f"{w}/{s}.fusion.json"


def forwarded(gate, served):
    """The gate's forwarded share, and what is left of it once the edge
    keeps the kinds its fusion answers with the edge's label."""
    if abs(gate - served) < 5e-5:
        return f"{pct(gate)}%"
    return f"{pct(gate)}% → {pct(served)}%"


def backend_right(fused):
    """The backend's accuracy on the e-mails forwarded to it (the edge's on
    the same), or a dash where the edge kept every one."""
    if fused["forwarded_rate"] == 0:
        return "— (nothing forwarded)"
    return f"{pct(fused['end_to_end']['forwarded_accuracy'])} ({pct(fused['forwarded_accuracy'])})"


def rows(w, sets, seen):
    yield ("| set | test e-mails | forwarded (→ once the edge keeps edge-only kinds) | reranker trained on it | edge only "
           "| end to end, reranker's fusion | end to end, bundle's fusion | Δ vs edge "
           "| backend right on forwarded (edge) | oracle | fit chosen on dev | head alone, held out |")
    yield "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: |"
    for s in sets:
        e = json.load(open(f"{w}/{s}.edge.json"))
        d = json.load(open(f"{w}/{s}.default.json"))["end_to_end"]
        f = json.load(open(f"{w}/{s}.fused.json"))
        fe = f["end_to_end"]
        fusion = json.load(open(fusion_file(w, s)))
        fits = [f"{k}: {fit_name(v)}" for k, v in fusion["by_reason"].items()]
        fits = "; ".join([*fits, f"{'rest' if fits else 'all'}: {fit_name(fusion['default'])}"])
        head = "—"
        if fusion.get("second_opinion_sha256"):  # a head was served this run
            try:
                head = pct(json.load(open(f"{w}/{s}.second-opinion.report.json"))["holdout_accuracy"])
            except (OSError, KeyError, TypeError):
                pass
        known = "?" if seen is None else ("yes" if s in seen else "no")
        yield (f"| {s} | {e['n']:,} | {forwarded(e['forwarded_rate'], f['forwarded_rate'])} | {known} | {pct(e['accuracy'])} "
               f"| {pct(d['accuracy'])} | **{pct(fe['accuracy'])}** "
               f"| {100 * (fe['accuracy'] - e['accuracy']):+.2f} "
               f"| {backend_right(f)} "
               f"| {pct(e['oracle_end_to_end_accuracy'])} | {fits} | {head} |")


def minutes(secs):
    return f"{secs // 60} min {secs % 60} s"


def recorded_seconds(path):
    """Seconds a step wrote when it ran, or None where it left no readable
    number (built before steps were timed, or cut off mid-write)."""
    try:
        return int(open(path).read().strip())
    except (OSError, ValueError):
        return None


def took_lines(w, secs, sets):
    """How long this run took, for the README (neutral: the state it ran
    from, not how that state came about), and which sets' bundles and heads
    it reused from earlier runs, with the seconds recorded when they were
    built, for the terminal."""
    started = time.time() - secs
    reused, timed, untimed, recorded = [], [], [], 0
    for s in sets:
        if os.path.getmtime(f"{w}/{s}.edge.json") >= started:
            continue
        reused.append(s)
        known = [t for t in (recorded_seconds(f"{w}/{s}.{step}.seconds")
                             for step in ("prepare", "head")) if t is not None]
        recorded += sum(known)
        (timed if known else untimed).append(s)
    line = (f"{len(sets)} set{'s' if len(sets) != 1 else ''} in {minutes(secs)} here "
            f"({os.cpu_count()} CPU cores, no GPU)")
    if len(reused) == len(sets):
        line += ", with every bundle and head already built."
    elif reused:
        line += f", with the bundles and heads of {', '.join(reused)} already built."
    else:
        line += ", bundles and heads included."
    detail = []
    if timed:
        detail.append(f"Reused the bundles and heads of {', '.join(timed)}, "
                      f"built by earlier runs in {minutes(recorded)}.")
    if untimed:
        detail.append(f"Reused those of {', '.join(untimed)} from earlier runs "
                      "that did not record how long they took.")
    return line, " ".join(detail)


def main():
    args = sys.argv[1:]
    readme = None
    if "--readme" in args:
        i = args.index("--readme")
        if i + 1 >= len(args):
            sys.exit("--readme needs the README's path")
        readme = args[i + 1]
        del args[i : i + 2]
    w, secs, reranker, sets = args[0], int(args[1]), args[2], args[3:]
    table = list(rows(w, sets, trained_on(reranker)))
    took, reuse = took_lines(w, secs, sets)
    print("\n".join(table))
    print(f"\n{took}")
    if reuse:
        print(reuse)
    if readme:
        text = open(readme).read()
        if BEGIN not in text or END not in text:
            sys.exit(f"{readme} has no {BEGIN} … {END} block to replace")
        head, rest = text.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        block = "\n".join([BEGIN, *table, "", took, END])
        open(readme, "w").write(head + block + tail)
        print(f"wrote the table into {readme}", file=sys.stderr)


if __name__ == "__main__":
    main()
