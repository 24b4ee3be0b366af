// Labels the messages of a webmail page. Which page and where things are is
// the adapter's business (adapters/); this file only sends the messages to
// the extension, in small chunks so that labels appear as they are ready, and
// redraws a label whenever its stored result changes (a queued e-mail that
// the backend has reranked, for instance).

(() => {
  const adapter = (globalThis.mailsortAdapters ?? []).find((a) => a.detect());
  if (!adapter) return;

  const CHUNK = 8;
  const elements = new Map(); // e-mail id -> message element
  const sent = new Set();

  function badge(result) {
    const el = document.createElement("span");
    el.className = "mailsort-label";
    el.dataset.mailsortState = result.state;
    if (result.state === "error") {
      el.textContent = "mailsort: error";
      el.title = result.error;
      return el;
    }
    el.dataset.mailsortLabel = result.label;
    el.dataset.mailsortDecidedBy = result.decidedBy;
    const where = result.state === "queued" ? "provisional, waiting for the backend" : `decided by the ${result.decidedBy}`;
    el.textContent = `${result.label.replaceAll("_", " ")} ${Math.round(result.confidence * 100)}%`;
    if (result.state === "queued") el.textContent += " …";
    el.title = `${result.label} (${(result.confidence * 100).toFixed(1)}%), ${where}`;
    return el;
  }

  function show(result) {
    const element = elements.get(result.id);
    if (element) adapter.place(element, badge(result));
  }

  async function classify(messages) {
    for (let i = 0; i < messages.length; i += CHUNK) {
      const chunk = messages.slice(i, i + CHUNK);
      const reply = await chrome.runtime.sendMessage({
        target: "background",
        type: "classify",
        emails: chunk.map(({ id, subject, body }) => ({ id, subject, body })),
      });
      if (!reply?.ok) {
        for (const m of chunk) show({ id: m.id, state: "error", error: reply?.error ?? "no answer" });
        continue;
      }
      reply.value.forEach(show);
    }
  }

  function scan() {
    const fresh = [];
    for (const m of adapter.messages()) {
      elements.set(m.id, m.element);
      if (!sent.has(m.id)) {
        sent.add(m.id);
        fresh.push(m);
      }
    }
    if (fresh.length > 0) classify(fresh);
  }

  chrome.storage.onChanged.addListener((changes, area) => {
    if (area !== "local") return;
    for (const [key, { newValue }] of Object.entries(changes)) {
      if (key.startsWith("r:") && newValue) show(newValue);
    }
  });

  const container = adapter.container();
  if (container) new MutationObserver(scan).observe(container, { childList: true, subtree: true });
  scan();
})();
