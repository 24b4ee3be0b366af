//! The report page: headline numbers, the six plots, and the tables behind
//! the confusion and per-label plots.

use std::fmt::Write;

use crate::figures::Figures;
use crate::{ReportError, ReportInput};

/// The drawn figures, as SVG documents.
pub struct Plots {
    pub coverage: String,
    pub reliability: String,
    pub confusion: String,
    pub precision_recall: String,
    pub forwarded: String,
    pub end_to_end: String,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

/// An SVG document as an inline element (plotters writes an XML prolog
/// first on some versions; HTML does not want it).
fn inline(svg: &str) -> &str {
    svg.find("<svg").map_or(svg, |i| &svg[i..])
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:980px;color:#222}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}\
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
td:first-child,th:first-child{text-align:left}figure{margin:1em 0}figcaption{color:#555;font-size:.9em}\
dl{display:grid;grid-template-columns:max-content auto;gap:2px 12px}dt{color:#555}";

pub fn page(input: &ReportInput, f: &Figures, plots: &Plots) -> Result<String, ReportError> {
    let mut h = String::new();
    // The figures as data, for readers and tests; `<` is escaped so that no
    // label can close the element.
    let data = serde_json::to_string(f)?.replace('<', "\\u003c");
    let w = &mut h;
    // Writing into a String cannot fail.
    let _ = write!(
        w,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title>\
         <style>{STYLE}</style></head><body><h1>{}</h1><dl>",
        esc(input.title),
        esc(input.title)
    );
    for (k, v) in input.facts {
        let _ = write!(w, "<dt>{}</dt><dd>{}</dd>", esc(k), esc(v));
    }
    let _ = write!(
        w,
        "</dl><table id=\"summary\"><tr><th>figure</th><th>value</th></tr>\
         <tr><td>test e-mails</td><td data-key=\"n\">{}</td></tr>\
         <tr><td>accuracy, edge only</td><td data-key=\"accuracy\">{}</td></tr>\
         <tr><td>macro F1, edge only</td><td data-key=\"macro_f1\">{}</td></tr>\
         <tr><td>forwarded</td><td data-key=\"forwarded_rate\">{}</td></tr>\
         <tr><td>accuracy kept at the edge</td><td data-key=\"edge_accuracy\">{}</td></tr>\
         <tr><td>edge's accuracy on forwarded</td><td data-key=\"forwarded_accuracy\">{}</td></tr>",
        f.n,
        pct(f.accuracy),
        pct(f.macro_f1),
        pct(f.forwarded_rate),
        pct(f.edge_accuracy),
        pct(f.forwarded_accuracy)
    );
    if let Some(e) = &f.end_to_end {
        let _ = write!(
            w,
            "<tr><td>accuracy end to end</td><td data-key=\"end_to_end.accuracy\">{}</td></tr>\
             <tr><td>end to end on forwarded</td><td data-key=\"end_to_end.forwarded_accuracy\">{}</td></tr>",
            pct(e.accuracy_end_to_end),
            pct(e.forwarded_end_to_end)
        );
    }
    h.push_str("</table>");
    let figure = |h: &mut String, id: &str, title: &str, svg: &str, caption: &str| {
        let _ = write!(
            h,
            "<h2>{}</h2><figure data-figure=\"{id}\">{}<figcaption>{}</figcaption></figure>",
            esc(title),
            inline(svg),
            esc(caption)
        );
    };
    figure(
        &mut h,
        "coverage",
        "Gate",
        &plots.coverage,
        "Keeping the e-mails the gate is surest of first: accuracy on what stays at the edge as the edge keeps more. The dot is this bundle's gate.",
    );
    figure(
        &mut h,
        "reliability",
        "Calibration",
        &plots.reliability,
        "Share of e-mails whose edge label is right, per bin of the edge's probability for that label.",
    );
    figure(
        &mut h,
        "end-to-end",
        "Edge only against end to end",
        &plots.end_to_end,
        "The same e-mails: the edge's labels, and the final labels (the backend's where it answered).",
    );
    figure(
        &mut h,
        "confusion",
        "Confusions",
        &plots.confusion,
        "Counts of gold (rows) against the edge's label (columns) for the labels most involved in errors.",
    );
    h.push_str("<table id=\"confusions\"><tr><th>gold</th><th>edge's label</th><th>e-mails</th><th>siblings</th></tr>");
    for c in &f.confusions {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.gold),
            esc(&c.predicted),
            c.count,
            if c.siblings { "yes" } else { "" }
        );
    }
    h.push_str("</table>");
    figure(
        &mut h,
        "precision-recall",
        "Per label",
        &plots.precision_recall,
        "The edge's precision and recall for each label.",
    );
    figure(
        &mut h,
        "forwarded",
        "Forwarded share per label",
        &plots.forwarded,
        "Share of each label's e-mails (by gold label) that the gate sent to the backend.",
    );
    h.push_str(
        "<table id=\"per-label\"><tr><th>label</th><th>e-mails</th><th>precision</th><th>recall</th><th>F1</th><th>forwarded</th>",
    );
    if f.end_to_end.is_some() {
        h.push_str("<th>recall end to end</th>");
    }
    h.push_str("</tr>");
    for l in &f.per_label {
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
            esc(&l.label),
            l.support,
            pct(l.precision),
            pct(l.recall),
            pct(l.f1),
            pct(l.forwarded_share)
        );
        if let Some(r) = l.end_to_end_recall {
            let _ = write!(h, "<td>{}</td>", pct(r));
        }
        h.push_str("</tr>");
    }
    let _ = write!(
        h,
        "</table><script type=\"application/json\" id=\"mailsort-figures\">{data}</script></body></html>"
    );
    Ok(h)
}
