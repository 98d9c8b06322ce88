// trustnode web app: live regions over server-sent events. No framework, no inline
// script (the Content-Security-Policy forbids it). On each change the page is
// fetched again from our own origin and every element marked data-live is
// replaced by its new server-rendered (escaped) version: no HTML is built here.

const body = document.body;
const source = body.dataset.events;
let pending = null;

async function refresh() {
  pending = null;
  const answer = await fetch(window.location.href, { credentials: "same-origin" });
  if (!answer.ok) return;
  const fresh = new DOMParser().parseFromString(await answer.text(), "text/html");
  for (const region of document.querySelectorAll("[data-live][id]")) {
    const next = fresh.getElementById(region.id);
    if (next && next.innerHTML !== region.innerHTML) region.replaceWith(next);
  }
  body.dataset.refreshed = String(Number(body.dataset.refreshed || "0") + 1);
}

if (source && window.EventSource) {
  const events = new EventSource(source);
  events.addEventListener("change", () => {
    if (pending === null) pending = setTimeout(refresh, 300);
  });
  events.addEventListener("open", () => { body.dataset.live = "on"; });
}
