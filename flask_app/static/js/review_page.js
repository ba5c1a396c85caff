// The review page's actions: relabel, accept the model's label, delete (with
// undo), through the JSON API. The list itself is rendered by the server; the
// session cookie authorises these calls.
//
// Delete is undoable: the card goes at once, the DELETE request only when the
// undo window closes, when another drawing is deleted, or when the page is
// left (a keepalive request outlives the page).

const UNDO_MS = 8000;

const byTestId = (testid) => document.querySelector(`[data-testid="${testid}"]`);
const grid = byTestId("samples");
const statusLine = byTestId("status");
const undoButton = byTestId("undo-delete");
const summary = byTestId("summary");
const emptyNote = byTestId("empty");
const filters = byTestId("filters");

function say(message, isError = false) {
  statusLine.textContent = message;
  statusLine.dataset.tone = isError ? "error" : "success"; // app.css colours .status by tone
}

/** "5 matching, showing 1–5." after the list changed under the page. */
function updateSummary(change) {
  const total = Math.max(0, Number(summary.dataset.total) + change);
  const first = Number(summary.dataset.first);
  const last = Math.max(first - 1, Number(summary.dataset.last) + change);
  summary.dataset.total = String(total);
  summary.dataset.last = String(last);
  const showing = last >= first && first > 0 ? `, showing ${first}–${last}` : "";
  const count = document.createElement("span");
  count.dataset.testid = "total";
  count.textContent = String(total);
  summary.replaceChildren(count, ` matching${showing}.`);
  emptyNote.hidden = grid.querySelector('[data-testid="sample"]:not([hidden])') !== null;
}

function sampleUrl(sampleId) {
  return `${grid.dataset.api}/${encodeURIComponent(sampleId)}`;
}

async function callApi(method, sampleId, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(sampleUrl(sampleId), options);
  if (response.status === 401) {
    window.location.reload(); // the session ended: the page asks for the token again
    throw new Error("signed out");
  }
  if (!response.ok) {
    let message = `the server answered ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // not JSON: keep the status
    }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function setBusy(card, busy) {
  card.classList.toggle("review-card--busy", busy);
  for (const control of card.querySelectorAll("select, button")) control.disabled = busy;
}

/** Show a sample's new label on its card. */
function showLabel(card, sample) {
  card.dataset.label = String(sample.label);
  card.setAttribute("aria-label", `Drawing labelled ${sample.label}`);
  card.querySelector('[data-testid="sample-label"]').textContent = String(sample.label);
  card.querySelector('select[data-action="relabel"]').value = String(sample.label);
  card.querySelector("img").alt = `drawing labelled ${sample.label}`;
  card.classList.toggle("review-card--disagreed", Boolean(sample.disagreed));
  if (!sample.disagreed) card.querySelector('[data-action="accept"]')?.remove();
}

async function relabel(card, label, { focusAfter = null } = {}) {
  const previous = card.dataset.label;
  setBusy(card, true);
  try {
    const sample = await callApi("PATCH", card.dataset.id, { label });
    setBusy(card, false);
    showLabel(card, sample);
    say(`Relabelled as ${sample.label}.`);
  } catch (error) {
    setBusy(card, false);
    card.querySelector('select[data-action="relabel"]').value = previous;
    say(`Could not relabel: ${error.message}`, true);
  }
  // The button pressed may be gone (accepted): keep the keyboard on the card.
  if (focusAfter && !focusAfter.isConnected) card.focus();
}

// --- delete, with undo ------------------------------------------------------

let pending = null; // {card, timer}: deleted on screen, not yet on the server

async function commitDelete(entry) {
  clearTimeout(entry.timer);
  if (pending === entry) {
    pending = null;
    undoButton.hidden = true;
  }
  try {
    await callApi("DELETE", entry.card.dataset.id);
    entry.card.remove();
  } catch (error) {
    entry.card.hidden = false;
    updateSummary(+1);
    say(`Could not delete: ${error.message}`, true);
  }
}

function remove(card) {
  if (pending) commitDelete(pending);
  const cards = Array.from(grid.querySelectorAll('[data-testid="sample"]:not([hidden])'));
  const index = cards.indexOf(card);
  const next = cards[index + 1] || cards[index - 1] || summary;
  card.hidden = true;
  updateSummary(-1);
  const entry = { card, timer: 0 };
  entry.timer = setTimeout(() => commitDelete(entry), UNDO_MS);
  pending = entry;
  say(`Deleted the drawing labelled ${card.dataset.label}.`);
  undoButton.hidden = false;
  // Focus goes to the next drawing, not to the page's start.
  next.focus();
}

function undoDelete() {
  if (!pending) return;
  const { card, timer } = pending;
  clearTimeout(timer);
  pending = null;
  undoButton.hidden = true;
  card.hidden = false;
  updateSummary(+1);
  say(`Kept the drawing labelled ${card.dataset.label}.`);
  card.focus();
}

// Leaving the page (a filter, the next page, closing the tab) ends the undo window.
window.addEventListener("pagehide", () => {
  if (!pending) return;
  clearTimeout(pending.timer);
  fetch(sampleUrl(pending.card.dataset.id), { method: "DELETE", credentials: "same-origin", keepalive: true });
  pending = null;
});

// --- wiring -----------------------------------------------------------------

grid.addEventListener("change", (event) => {
  const select = event.target.closest('select[data-action="relabel"]');
  if (select) relabel(select.closest('[data-testid="sample"]'), Number(select.value));
});

grid.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-action]");
  if (!button) return;
  const card = button.closest('[data-testid="sample"]');
  if (button.dataset.action === "delete") remove(card);
  if (button.dataset.action === "accept") relabel(card, Number(button.dataset.prediction), { focusAfter: button });
});

undoButton.addEventListener("click", undoDelete);

// Filters apply as soon as they change; the Show button stays for keyboard users.
filters.addEventListener("change", () => filters.requestSubmit());
