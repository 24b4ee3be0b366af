//! Importing labelled mail from local mailboxes, including the bad inputs
//! a real mailbox holds. Messages are written with the crate's own export
//! and by hand where the point is a broken one.

use std::fs;
use std::path::Path;

use mailsort_mailbox::MailboxError;
use mailsort_mailbox::export::{ExportFormat, export};
use mailsort_mailbox::import::{Format, ImportOptions, detect, import_path};
use mailsort_shared::dataset::LabelledEmail;

fn row(id: &str, label: &str, subject: &str) -> LabelledEmail {
    LabelledEmail {
        id: id.into(),
        subject: subject.into(),
        body: format!("Hello,\n\nthis is about {subject}.\n\nThanks"),
        label: Some(label.into()),
        parent: None,
        raw: None,
    }
}

fn rows() -> Vec<LabelledEmail> {
    let mut v = Vec::new();
    for i in 0..3 {
        v.push(row(&format!("b{i}"), "Billing", &format!("invoice {i}")));
        v.push(row(
            &format!("p{i}"),
            "Work/Projects",
            &format!("milestone {i}"),
        ));
    }
    v
}

fn labels(dir: &Path) -> Vec<(String, usize)> {
    let imported = import_path(dir, &ImportOptions::default()).expect("imports");
    imported.summary.per_label.into_iter().collect()
}

#[test]
fn every_format_reads_back_the_same_labels_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let want = vec![("Billing".to_string(), 3), ("Work/Projects".to_string(), 3)];
    for (name, format, expect) in [
        (
            "mdpp",
            ExportFormat::MaildirPlusPlus,
            Format::MaildirPlusPlus,
        ),
        (
            "folders",
            ExportFormat::MaildirFolders,
            Format::MaildirFolders,
        ),
        ("mbox", ExportFormat::MboxFolder, Format::MboxFolder),
        (
            "takeout.mbox",
            ExportFormat::GmailTakeout,
            Format::GmailTakeout,
        ),
    ] {
        let out = tmp.path().join(name);
        export(&rows(), format, &out).unwrap();
        assert_eq!(detect(&out).unwrap(), expect, "{name}");
        assert_eq!(labels(&out), want, "{name}");
        let imported = import_path(&out, &ImportOptions::default()).unwrap();
        let r = imported
            .rows
            .iter()
            .find(|r| r.id == "p1@mailsort.invalid")
            .expect("ids are Message-IDs");
        assert_eq!(r.parent.as_deref(), Some("Work"), "{name}");
        assert!(
            r.raw.as_deref().unwrap().contains("Subject: milestone 1"),
            "{name}"
        );
    }
}

#[test]
fn a_folder_that_is_not_a_mailbox_is_a_named_error() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("photos")).unwrap();
    match import_path(tmp.path(), &ImportOptions::default()) {
        Err(MailboxError::NotAMailbox { why, .. }) => assert!(why.contains("no Maildir"), "{why}"),
        other => panic!("expected NotAMailbox, got {other:?}"),
    }
    let plain = tmp.path().join("notes.txt");
    fs::write(&plain, "not mail").unwrap();
    assert!(matches!(
        import_path(&plain, &ImportOptions::default()),
        Err(MailboxError::NotAMailbox { .. })
    ));
}

#[test]
fn an_mbox_without_a_from_line_is_skipped_with_a_reason_and_the_rest_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("mbox");
    export(&rows(), ExportFormat::MboxFolder, &out).unwrap();
    fs::write(out.join("Broken.mbox"), "Frm nobody\nSubject: x\n\nbody\n").unwrap();
    let imported = import_path(&out, &ImportOptions::default()).unwrap();
    assert_eq!(imported.rows.len(), 6);
    let s = &imported.summary.skipped;
    assert!(
        s.iter()
            .any(|k| k.at.ends_with("Broken.mbox") && k.reason.contains("`From `")),
        "{s:?}"
    );
}

#[test]
fn a_huge_message_and_a_one_message_label_are_reported_not_fatal() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("md");
    let mut v = rows();
    v.push(row("lonely", "Lonely", "only one"));
    export(&v, ExportFormat::MaildirPlusPlus, &out).unwrap();
    let huge = out.join(".Billing/new/huge");
    let mut text = String::from("Message-ID: <huge@x>\nSubject: big\n\n");
    text.push_str(&"y".repeat(30 * 1024 * 1024));
    fs::write(&huge, text).unwrap();
    let imported = import_path(&out, &ImportOptions::default()).unwrap();
    let s = &imported.summary;
    assert_eq!(s.per_label.get("Billing"), Some(&3));
    assert_eq!(s.too_few.get("Lonely"), Some(&1));
    assert!(
        !imported
            .rows
            .iter()
            .any(|r| r.label.as_deref() == Some("Lonely"))
    );
    assert!(
        s.skipped
            .iter()
            .any(|k| k.at.ends_with("huge") && k.reason.contains("over the 25 MB limit")),
        "{:?}",
        s.skipped
    );
}

#[test]
fn takeout_drops_system_labels_and_files_a_multi_label_message_under_its_rarest_label() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("All mail.mbox");
    let mut mbox = String::new();
    let mut msg = |id: &str, labels: &str| {
        mbox.push_str(&format!(
            "From 1@xxx Mon Jan 1 00:00:00 2024\nX-Gmail-Labels: {labels}\nMessage-ID: <{id}>\nSubject: s {id}\n\nbody {id}\n\n"
        ));
    };
    for i in 0..3 {
        msg(&format!("w{i}"), "Inbox,Work,Opened");
    }
    msg("t1", "Travel,Important");
    msg("t2", "Travel");
    msg("both", "Work,Travel,Category Updates");
    msg("none", "Inbox,Sent");
    fs::write(&path, mbox).unwrap();
    let imported = import_path(&path, &ImportOptions::default()).unwrap();
    let s = &imported.summary;
    // Travel (3 with `both`) is rarer than Work (4 with it): `both` is Travel.
    assert_eq!(s.per_label.get("Travel"), Some(&3));
    assert_eq!(s.per_label.get("Work"), Some(&3));
    let both = imported.rows.iter().find(|r| r.id == "both").unwrap();
    assert_eq!(both.label.as_deref(), Some("Travel"));
    assert!(
        s.skipped
            .iter()
            .any(|k| k.reason.contains("1 messages with no user label"))
    );
}

#[test]
fn folder_flags_add_and_remove_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("md");
    export(&rows(), ExportFormat::MaildirPlusPlus, &out).unwrap();
    export(
        &[row("t", "Trash", "x"), row("t2", "Trash", "y")],
        ExportFormat::MaildirPlusPlus,
        &out,
    )
    .unwrap();
    let mut opts = ImportOptions::default();
    assert!(
        !import_path(&out, &opts)
            .unwrap()
            .summary
            .per_label
            .contains_key("Trash")
    );
    opts.filter.include.push("Trash".into());
    opts.filter.exclude.push("Work".into());
    let s = import_path(&out, &opts).unwrap().summary;
    assert_eq!(s.per_label.keys().collect::<Vec<_>>(), ["Billing", "Trash"]);
    assert!(s.folders_left_out.contains(&"Work/Projects".to_string()));
}
