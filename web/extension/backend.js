// The backend's /v1/rerank, as the service worker calls it. Only the
// forward entries produced by the edge go out: e-mail id, cleaned and
// truncated text, candidate labels with their edge probabilities.

/** The backend's own limit on e-mails per request (its --max-emails). */
export const MAX_EMAILS_PER_REQUEST = 64;

/** Posts one /v1/rerank request; throws an Error with a readable message. */
export async function rerank(settings, bundle, emails) {
  const base = settings.backendUrl.endsWith("/") ? settings.backendUrl : `${settings.backendUrl}/`;
  const headers = { "content-type": "application/json" };
  if (settings.apiKey) headers.authorization = `Bearer ${settings.apiKey}`;
  let response;
  try {
    response = await fetch(new URL("v1/rerank", base), {
      method: "POST",
      headers,
      body: JSON.stringify({ bundle, emails, deadline_ms: settings.timeoutMs }),
      // The backend answers 504 at its deadline; this only guards a hung connection.
      signal: AbortSignal.timeout(settings.timeoutMs + 2000),
    });
  } catch (e) {
    throw new Error(`backend unreachable (${e?.name === "TimeoutError" ? "timed out" : e?.message ?? e})`);
  }
  if (!response.ok) {
    let detail = "";
    try {
      detail = `: ${(await response.json()).error}`;
    } catch {
      // Not JSON: the status says enough.
    }
    throw new Error(`backend answered ${response.status}${detail}`);
  }
  return response.json();
}
