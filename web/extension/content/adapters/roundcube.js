// Adapter for Roundcube 1.6 (Elastic skin and its relatives): the message
// list, and the message opened in the preview frame or its own page. Each
// message is known by its folder and IMAP uid, read from Roundcube's own
// links; the service worker fetches the message itself (webmail/roundcube.js),
// so nothing of the text is read here. Folder switches, paging, search and
// new mail all redraw #messagelist, which the content script watches.

(() => {
  const isRoundcube = () => document.querySelector('script[src*="program/js/app"]') !== null;
  const params = () => new URLSearchParams(location.search);
  const opened = () => ["preview", "show"].includes(params().get("_action")) && params().has("_uid");

  function fromLink(link) {
    const p = new URL(link.href, location.href).searchParams;
    const uid = p.get("_uid");
    const mbox = p.get("_mbox");
    if (!uid || !mbox || !/^\d+$/.test(uid)) return null;
    return { key: `${mbox}:${uid}`, mbox, uid };
  }

  function listMessages() {
    const out = [];
    for (const row of document.querySelectorAll("#messagelist tbody tr.message")) {
      // Roundcube hides the rows of moved or deleted messages, and keeps them.
      if (row.style.display === "none") continue;
      const link = row.querySelector('td.subject a[href*="_uid="]');
      const where = link && fromLink(link);
      if (!where) continue;
      out.push({ ...where, subject: link.textContent.trim(), element: row });
    }
    return out;
  }

  function openedMessage() {
    const header = document.querySelector("#message-header h2.subject, h2.subject");
    const uid = params().get("_uid");
    const mbox = params().get("_mbox");
    if (!header || !mbox || !/^\d+$/.test(uid ?? "")) return [];
    const subject = [...header.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE).map((n) => n.textContent).join(" ").trim();
    return [{ key: `${mbox}:${uid}`, mbox, uid, subject, element: header }];
  }

  (globalThis.mailsortAdapters ??= []).push({
    name: "roundcube",
    canFile: true,
    detect: () => isRoundcube() && (document.querySelector("#messagelist") !== null || opened()),
    messages: () => (opened() ? openedMessage() : listMessages()),
    container: () => (opened() ? null : document.querySelector("#messagelist")),
    place(element, badge) {
      let slot = element.querySelector(":scope .mailsort-slot");
      if (!slot) {
        slot = document.createElement("span");
        slot.className = "mailsort-slot";
        // In a list row, beside the subject; in an opened message, in its title.
        const subject = element.querySelector("td.subject span.subject") ?? element;
        subject.append(slot);
      }
      slot.replaceChildren(badge);
    },
  });
})();
