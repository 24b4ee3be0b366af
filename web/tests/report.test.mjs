// The evaluation report (`mailsort eval --report DIR`) in Debian's Chromium:
// the page loads from disk with no console errors, every plot is drawn, and
// the figures it shows equal the eval JSON printed by the same run.
//   MAILSORT_REPORT_DIR   the report folder (index.html, figures.json)
//   MAILSORT_EVAL_JSON    the run's `--json` output
//   MAILSORT_SCREENSHOT   where to keep a full-page screenshot
//   CHROMIUM_PATH         optional, default /usr/bin/chromium
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const DIR = process.env.MAILSORT_REPORT_DIR;
const FIGURES = ["coverage", "reliability", "end-to-end", "confusion", "precision-recall", "forwarded"];

const skip = !DIR && "run through scripts/test/report.sh, which sets MAILSORT_REPORT_DIR";

test("the report shows this run's numbers and every plot, without errors", { skip }, async () => {
  const EVAL = JSON.parse(readFileSync(process.env.MAILSORT_EVAL_JSON, "utf8"));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    const errors = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => errors.push(String(e)));
    // Self-contained: any request but the page itself is a failure.
    const url = pathToFileURL(path.resolve(DIR, "index.html")).href;
    page.on("request", (r) => r.url() !== url && errors.push(`unexpected request ${r.url()}`));
    await page.goto(url);

    for (const id of FIGURES) {
      const box = await page.locator(`figure[data-figure="${id}"] svg`).boundingBox();
      assert.ok(box && box.width > 100 && box.height > 50, `plot ${id} is drawn`);
      const marks = await page.locator(`figure[data-figure="${id}"] svg :is(rect, polyline, path, circle)`).count();
      assert.ok(marks > 3, `plot ${id} has marks (${marks})`);
    }

    const figures = JSON.parse(await page.locator("#mailsort-figures").textContent());
    const close = (a, b, what) => assert.ok(Math.abs(a - b) < 1e-9, `${what}: report ${a}, eval ${b}`);
    assert.equal(figures.n, EVAL.n);
    for (const k of ["accuracy", "macro_f1", "forwarded_rate", "edge_accuracy", "forwarded_accuracy"]) {
      close(figures[k], EVAL[k], k);
    }
    // The shown table is the same numbers, rounded.
    for (const k of ["accuracy", "forwarded_rate", "edge_accuracy"]) {
      const shown = await page.locator(`td[data-key="${k}"]`).textContent();
      assert.equal(shown, `${(100 * EVAL[k]).toFixed(2)}%`, k);
    }
    close(figures.operating_point.coverage, 1 - EVAL.forwarded_rate, "operating point coverage");
    close(figures.operating_point.accuracy, EVAL.edge_accuracy, "operating point accuracy");
    const support = figures.per_label.reduce((s, l) => s + l.support, 0);
    assert.equal(support, EVAL.n, "per-label support adds up to the test set");
    if (EVAL.end_to_end) {
      assert.ok(figures.end_to_end, "end-to-end figure present");
      close(figures.end_to_end.accuracy_end_to_end, EVAL.end_to_end.accuracy, "end-to-end accuracy");
      close(figures.end_to_end.forwarded_end_to_end, EVAL.end_to_end.forwarded_accuracy, "end-to-end on forwarded");
    }
    const rows = await page.locator("#per-label tr").count();
    assert.equal(rows - 1, figures.per_label.length, "one table row per label");

    await page.screenshot({ path: process.env.MAILSORT_SCREENSHOT, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
