// Renders emails.json (written by scripts/build/demo-inbox.py) as a mail list.
// `?from=N&to=M` shows a slice of it, so that tests can open fresh mail.

const params = new URLSearchParams(location.search);
const response = await fetch("emails.json");
if (!response.ok) {
  document.querySelector("#about").textContent =
    "emails.json is missing: run scripts/build/demo-inbox.py (scripts/test/browser.sh does).";
  throw new Error("emails.json missing");
}
const all = await response.json();
const from = Number(params.get("from") ?? 0);
const to = Number(params.get("to") ?? all.length);

const list = document.querySelector("#messages");
for (const email of all.slice(from, to)) {
  const article = document.createElement("article");
  article.className = "message";
  article.dataset.id = email.id;
  const head = document.createElement("div");
  head.className = "head";
  const sender = document.createElement("span");
  sender.className = "from";
  sender.textContent = email.from;
  const subject = document.createElement("span");
  subject.className = "subject";
  subject.textContent = email.subject;
  const labels = document.createElement("span");
  labels.className = "labels";
  head.append(sender, subject, labels);
  const body = document.createElement("div");
  body.className = "body";
  body.textContent = email.body;
  article.append(head, body);
  list.append(article);
}
document.title = `Inbox (${list.children.length}) · mailsort demo`;
