//! Times cleaning on deeply nested HTML, the shapes that once cost
//! quadratic time: `cargo run --release -p mailsort-shared --example hostile_html`.
//! With file arguments (a fuzzer's slow units, say), times cleaning each
//! file as a raw message and as an HTML body instead.

use std::time::Instant;

use mailsort_shared::clean::{CleanConfig, clean_pair, clean_raw};

fn message(html: &str) -> Vec<u8> {
    format!("Subject: refund\nContent-Type: text/html\n\n{html}").into_bytes()
}

fn main() {
    let cfg = CleanConfig::default();
    let files: Vec<String> = std::env::args().skip(1).collect();
    if !files.is_empty() {
        for f in files {
            let bytes = match std::fs::read(&f) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("{f}: {e}");
                    continue;
                }
            };
            let t = Instant::now();
            let raw = clean_raw(&bytes, &cfg).is_ok();
            let as_raw = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let _ = clean_pair("", &String::from_utf8_lossy(&bytes), &cfg);
            let as_body = t.elapsed().as_secs_f64();
            println!(
                "{f}: {} bytes, as a raw message {as_raw:.3} s (parsed: {raw}), as a body {as_body:.3} s",
                bytes.len()
            );
        }
        return;
    }
    let mut cases = Vec::new();
    for n in [12_500, 25_000, 50_000] {
        let html = format!("{}refund my order{}", "<div>".repeat(n), "</div>".repeat(n));
        cases.push((format!("{n} nested <div>"), html));
    }
    cases.push((
        "32,700 <ul><li>".into(),
        format!("{}refund my order", "<ul><li>".repeat(32_700)),
    ));
    cases.push((
        "50,000 <p> paragraphs".into(),
        "<p>refund my order</p>".repeat(50_000),
    ));
    for (name, html) in cases {
        let raw = message(&html);
        let t = Instant::now();
        let c = clean_raw(&raw, &cfg).expect("a well-formed message");
        println!(
            "{name:>24}: {:>8} bytes, {:>7.3} s, kept {:?}",
            raw.len(),
            t.elapsed().as_secs_f64(),
            c.text.chars().take(40).collect::<String>()
        );
    }
}
