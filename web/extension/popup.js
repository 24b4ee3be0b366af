// Each e-mail's label, confidence and where it was decided, newest first.

const SHOWN = 200;

function where(result) {
  if (result.state === "error") return `error: ${result.error}`;
  if (result.state === "queued") return "edge (provisional, queued for the backend)";
  return result.filed ? `${result.decidedBy}, filed in ${result.filed.folder}` : result.decidedBy;
}

function row(result) {
  const tr = document.createElement("tr");
  tr.dataset.id = result.id;
  tr.dataset.state = result.state;
  const cells = [
    result.subject || result.id.slice(result.id.indexOf(" ") + 1),
    result.label ?? "",
    result.confidence === undefined ? "" : `${(result.confidence * 100).toFixed(1)}%`,
    where(result),
  ];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

async function render() {
  const reply = await chrome.runtime.sendMessage({ target: "background", type: "status" });
  if (!reply?.ok) {
    document.querySelector("#problem").hidden = false;
    document.querySelector("#problem").textContent = reply?.error ?? "the extension did not answer";
    return;
  }
  const { results, queued, retry, backendUrl } = reply.value;
  const byBackend = results.filter((r) => r.decidedBy === "backend" && r.state === "final").length;
  document.querySelector("#summary").textContent =
    `${results.length} e-mails · ${byBackend} reranked by the backend · ${queued} queued`;
  const problem = document.querySelector("#problem");
  problem.hidden = !retry;
  if (retry) {
    const at = new Date(retry.nextAt).toLocaleTimeString();
    problem.textContent = `Backend ${backendUrl || "(not set)"}: ${retry.lastError}. Next try at ${at}.`;
  }
  document.querySelector("#retry").hidden = queued === 0;
  document.querySelector("#results").replaceChildren(...results.slice(0, SHOWN).map(row));
}

document.querySelector("#retry").addEventListener("click", async () => {
  await chrome.runtime.sendMessage({ target: "background", type: "retryNow" });
  render();
});
chrome.storage.onChanged.addListener(() => render());
render();
