// Labels the messages of a webmail page. Which page and where things are is
// the adapter's business (adapters/); this file sends the messages' keys to
// the extension in small chunks, so that labels appear as they are ready,
// draws each label badge, and redraws it whenever the service worker says
// the result changed (a queued e-mail that the backend has reranked, a
// message filed). It is told labels and states only: never the e-mail text
// the service worker read, nor the API key.
//
// On sites that can file (Roundcube), the badge is a button that files the
// message into its label's folder, and a menu beside it corrects the label.

(() => {
  const adapter = (globalThis.mailsortAdapters ?? []).find((a) => a.detect());
  if (!adapter) return;

  const CHUNK = 8;
  const elements = new Map(); // key -> message element
  const messages = new Map(); // key -> the message as the adapter found it
  const views = new Map(); // key -> the last label view
  const asked = new Set(); // keys sent to the extension
  const autoAsked = new Set(); // keys whose automatic filing was asked for
  let labels = [];
  let autoFile = false;

  const request = (body) => chrome.runtime.sendMessage({ target: "background", adapter: adapter.name, ...body });

  function badge(v) {
    const el = document.createElement("span");
    el.className = "mailsort-label";
    el.dataset.mailsortKey = v.key;
    el.dataset.mailsortState = v.state;
    if (v.state === "error") {
      el.textContent = "mailsort: error";
      el.title = v.error;
      return el;
    }
    el.dataset.mailsortLabel = v.label;
    el.dataset.mailsortDecidedBy = v.decidedBy;
    if (v.filed) el.dataset.mailsortFiled = v.filed.folder;
    if (v.fileError) el.dataset.mailsortFileError = v.fileError;
    const where = v.state === "queued" ? "provisional, waiting for the backend" : `decided by the ${v.decidedBy}`;
    let text = `${v.label.replaceAll("_", " ")} ${Math.round(v.confidence * 100)}%`;
    if (v.state === "queued") text += " …";
    el.title = `${v.label} (${(v.confidence * 100).toFixed(1)}%), ${where}`;
    if (v.fileError) el.title += `. Not filed: ${v.fileError}`;
    const message = messages.get(v.key);
    if (!adapter.canFile || v.filed || !message) {
      el.append(v.filed ? `${text} → ${v.filed.folder}` : text);
      return el;
    }
    const button = document.createElement("button");
    button.type = "button";
    button.className = "mailsort-file";
    button.textContent = v.filing ? `${text} (filing…)` : text;
    button.disabled = Boolean(v.filing);
    button.title = `File into ${v.label}`;
    button.addEventListener("click", () => fileMessage(message));
    const menu = document.createElement("select");
    menu.className = "mailsort-correct";
    menu.title = "Correct the label and file there";
    menu.append(new Option("✎", ""), ...labels.filter((l) => l !== v.label).map((l) => new Option(l, l)));
    menu.disabled = Boolean(v.filing);
    menu.addEventListener("change", () => menu.value && fileMessage(message, menu.value));
    // The webmail's own row handlers (select, open) must not see these clicks.
    for (const control of [button, menu]) {
      for (const type of ["mousedown", "mouseup", "click", "dblclick", "touchstart"]) {
        control.addEventListener(type, (event) => event.stopPropagation());
      }
    }
    el.append(button, menu);
    return el;
  }

  function show(v) {
    views.set(v.key, v);
    const element = elements.get(v.key);
    if (element?.isConnected) adapter.place(element, badge(v));
    maybeAutoFile(v);
  }

  function maybeAutoFile(v) {
    if (!autoFile || !adapter.canFile || v.state !== "final" || v.filed || v.filing || v.fileError) return;
    if (autoAsked.has(v.key) || !messages.has(v.key)) return;
    autoAsked.add(v.key);
    fileMessage(messages.get(v.key), undefined, true);
  }

  async function fileMessage(message, label, auto = false) {
    const { key, mbox, uid } = message;
    const reply = await request({ type: "file", message: { key, mbox, uid }, label, auto });
    if (reply?.ok) show(reply.value);
    else if (!auto) show({ ...views.get(key), fileError: reply?.error ?? "no answer" });
  }

  function receive(value) {
    if (value.labels) labels = value.labels;
    if (value.autoFile !== undefined) autoFile = value.autoFile;
    value.results.forEach(show);
  }

  async function classify(batch) {
    for (let i = 0; i < batch.length; i += CHUNK) {
      const chunk = batch.slice(i, i + CHUNK);
      const reply = await request({
        type: "labels",
        messages: chunk.map(({ key, subject, body, mbox, uid }) => ({ key, subject, body, mbox, uid })),
      });
      if (!reply?.ok) {
        for (const m of chunk) {
          show({ key: m.key, state: "error", error: reply?.error ?? "no answer" });
          asked.delete(m.key);
        }
        continue;
      }
      receive(reply.value);
      // A fetch that failed is not kept: it is asked again at the next scan.
      for (const v of reply.value.results) if (v.state === "error") asked.delete(v.key);
    }
  }

  function scan() {
    const fresh = [];
    for (const m of adapter.messages()) {
      const moved = elements.get(m.key) !== m.element;
      elements.set(m.key, m.element);
      messages.set(m.key, m);
      if (moved && views.has(m.key)) adapter.place(m.element, badge(views.get(m.key)));
      if (!asked.has(m.key)) {
        asked.add(m.key);
        fresh.push(m);
      }
    }
    if (fresh.length > 0) classify(fresh);
  }

  let pending = null;
  const scanSoon = () => {
    pending ??= setTimeout(() => {
      pending = null;
      scan();
    }, 50);
  };

  chrome.runtime.onMessage.addListener((msg, sender) => {
    if (sender.id !== chrome.runtime.id || msg?.target !== "content" || msg.type !== "update") return;
    if (msg.autoFile !== undefined) autoFile = msg.autoFile;
    for (const v of msg.results) if (elements.has(v.key)) show(v);
  });

  const container = adapter.container();
  if (container) new MutationObserver(scanSoon).observe(container, { childList: true, subtree: true });
  scan();
})();
