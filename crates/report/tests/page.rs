//! The written page: every figure present, labels escaped, and the embedded
//! figures equal to the ones returned and written beside it.

use mailsort_report::{ReportInput, ReportRow, write_report};

fn row(gold: &str, edge: &str, conf: f32, fwd: bool, fin: &str) -> ReportRow {
    ReportRow {
        gold: gold.into(),
        edge_label: edge.into(),
        confidence: conf,
        slack: conf - 0.6,
        forwarded: fwd,
        final_label: fin.into(),
    }
}

#[test]
fn page_holds_every_figure_and_escapes_labels() {
    let rows = vec![
        row(
            "Billing & <refunds>",
            "Billing & <refunds>",
            0.9,
            false,
            "Billing & <refunds>",
        ),
        row(
            "Billing & <refunds>",
            "Tech/Login",
            0.5,
            true,
            "Billing & <refunds>",
        ),
        row("Tech/Login", "Tech/Login", 0.8, false, "Tech/Login"),
        row("Tech/Password", "Tech/Login", 0.4, true, "Tech/Login"),
    ];
    let eval = serde_json::json!({"n": 4});
    let dir = tempfile::tempdir().unwrap();
    let siblings = |a: &str, b: &str| a.starts_with("Tech/") && b.starts_with("Tech/") && a != b;
    let (figures, files) = write_report(
        dir.path(),
        &ReportInput {
            title: "a <test> run",
            facts: &[("bundle".into(), "x.msb".into())],
            rows: &rows,
            with_backend: true,
            eval_json: &eval,
            siblings: &siblings,
        },
    )
    .unwrap();
    let html = std::fs::read_to_string(&files.html).unwrap();
    for id in [
        "coverage",
        "reliability",
        "end-to-end",
        "confusion",
        "precision-recall",
        "forwarded",
    ] {
        let at = html
            .find(&format!("data-figure=\"{id}\""))
            .unwrap_or_else(|| panic!("figure {id} missing"));
        assert!(
            html[at..]
                .trim_start_matches(|c| c != '<')
                .starts_with("<svg"),
            "{id} holds an svg"
        );
    }
    assert!(
        !html.contains("<refunds>") && !html.contains("<test>"),
        "labels and title are escaped"
    );
    assert!(!html.contains("<?xml"), "inline svg without a prolog");
    let start = html.find("id=\"mailsort-figures\">").unwrap() + "id=\"mailsort-figures\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let embedded: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    // Both sides through the same text parser (serde_json's float parsing
    // is not exact round-trip).
    let returned: serde_json::Value =
        serde_json::from_str(&serde_json::to_string(&figures).unwrap()).unwrap();
    assert_eq!(embedded, returned);
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&files.figures).unwrap()).unwrap();
    assert_eq!(written, embedded);
    assert!(
        figures
            .confusions
            .iter()
            .any(|c| c.siblings && c.gold == "Tech/Password")
    );
}

#[test]
fn unwritable_folder_is_a_clear_error() {
    let file = tempfile::NamedTempFile::new().unwrap();
    let eval = serde_json::json!({});
    let err = write_report(
        &file.path().join("sub"),
        &ReportInput {
            title: "t",
            facts: &[],
            rows: &[],
            with_backend: false,
            eval_json: &eval,
            siblings: &|_, _| false,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("cannot write the report"), "{err}");
}
