//! Cleaning real messages: 20 Newsgroups posts (from the dataset's `raw`
//! field) and hand-written MIME e-mails (examples/emails).

use std::path::PathBuf;

use mailsort_shared::clean::{CleanConfig, clean_raw};

fn read(path: &str) -> Vec<u8> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::read(root.join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn cleaned(path: &str) -> String {
    clean_raw(&read(path), &CleanConfig::default())
        .unwrap()
        .text
}

#[test]
fn usenet_quotes_attributions_and_signatures_are_dropped() {
    assert_eq!(
        cleaned("tests/fixtures/20ng-atheism-53093.eml"),
        "Genocide is Caused by Atheism\nDoes anybody have Bobby's post in which he said something like \"I don't know why there are more men than women in islamic countries. Maybe it's atheists killing the female children\"? It's my personal favorite!"
    );
    assert_eq!(
        cleaned("tests/fixtures/20ng-graphics-38518.eml"),
        "TIFF: philosophical significance of 42\nDouglas Adams once said (paraphrased from memory): \"I just picked it. It seemed like the sort of number you wouldn't be afraid to take home to meet your parents. Nice and even, perfectly normal.\""
    );
    // Interleaved reply: both own paragraphs stay, the quotes between them go.
    let t = cleaned("tests/fixtures/20ng-graphics-38379.eml");
    assert!(t.starts_with("Please Recommend 3D Graphics Library For Mac.\nI think APDA has something called MacWireFrame"));
    assert!(t.contains("I can relate to that"));
    assert!(!t.contains("CAD package") && !t.contains("Techno-Rat") && !t.contains("seek forever"));
}

#[test]
fn sender_and_organisation_never_leak() {
    for p in [
        "tests/fixtures/20ng-atheism-53093.eml",
        "tests/fixtures/20ng-graphics-38379.eml",
        "tests/fixtures/20ng-graphics-38518.eml",
    ] {
        let t = cleaned(p).to_lowercase();
        for leak in ["tampere", "kth.se", "rahul.net", "organization", "nntp"] {
            assert!(!t.contains(leak), "{p} leaks {leak}: {t}");
        }
    }
}

#[test]
fn html_quoted_printable_disclaimer_and_blockquote() {
    assert_eq!(
        cleaned("../../examples/emails/refund-html.eml"),
        "Order 55812 - charged twice\nmy credit card was charged twice for order 55812 (2 x 89,90 €). Please refund the duplicate payment and send a corrected invoice."
    );
}

#[test]
fn windows_1252_outlook_reply_with_signoff() {
    assert_eq!(
        cleaned("../../examples/emails/vpn-outlook-reply.eml"),
        "VPN keeps disconnecting\nThe VPN client still drops the connection every 20 minutes on my laptop – reinstalling did not help. Can someone look at the gateway logs?"
    );
}

#[test]
fn binary_attachment_is_ignored() {
    assert_eq!(
        cleaned("../../examples/emails/outage-with-attachment.eml"),
        "Dashboard unavailable since 08:00\nOur dashboard has been unreachable since 08:00 UTC, every page returns a 503. Is there an outage or maintenance going on?"
    );
}
