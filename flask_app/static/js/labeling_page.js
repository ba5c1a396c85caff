// The labelling page (GET /labeling): draw a digit, say which digit it is,
// submit; the drawing is stored for fine-tuning. The model's live guess is
// shown beside it, so a person sees when their label disagrees.
import { DrawingPad, bindDrawingShortcuts, bindUndoButton } from "./canvas.js";
import { LivePredictor } from "./live_predictor.js";
import { PredictionView } from "./prediction_view.js";

const byTestId = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const pad = new DrawingPad(byTestId("canvas"));
const view = new PredictionView(byTestId("answer"));
const statusLine = byTestId("status");
const agreement = byTestId("agreement");
const submitButton = byTestId("submit");
const labelButtons = Array.from(document.querySelectorAll("[data-label]"));

let chosenLabel = null;
let submitting = false;

function say(message, tone) {
  statusLine.textContent = message;
  statusLine.dataset.tone = tone;  // "info" | "success" | "error": colour and icon in CSS
}

function updateAgreement() {
  const guess = view.digit;
  if (chosenLabel === null || guess === null) {
    agreement.textContent = "";
    agreement.dataset.agrees = "";
  } else if (guess === chosenLabel) {
    agreement.textContent = `The model agrees: it sees a ${guess} too.`;
    agreement.dataset.agrees = "true";
  } else {
    agreement.textContent =
      `You chose ${chosenLabel}; the model sees a ${guess}. If you are sure, submit: ` +
      "samples the model gets wrong teach it the most.";
    agreement.dataset.agrees = "false";
  }
}

function chooseLabel(label) {
  chosenLabel = label;
  for (const button of labelButtons) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.label) === label));
  }
  updateAgreement();
}

const predictor = new LivePredictor(() => pad.toDataURL(), {
  onBusy: (busy) => view.setBusy(busy),
  onResult: (result, { final }) => { view.show(result, { final }); updateAgreement(); },
  onEmpty: () => { view.clear(); updateAgreement(); },
  onError: (message) => { view.showError(message); updateAgreement(); },
});

pad.addEventListener("strokemove", () => predictor.schedule());
pad.addEventListener("change", (event) => {
  if (event.detail.reason === "reset") {
    predictor.cancel();
    view.clear();
    updateAgreement();
  } else {
    predictor.predictNow();
  }
});

/** Why a submission failed, in words a person can act on. */
function failureMessage(status, body, retryAfter) {
  const detail = body && typeof body.error === "string" ? body.error : "";
  if (status === 422) return "Not saved: the drawing looks empty. Draw a digit, then submit.";
  if (status === 400) return `Not saved: ${detail || "the server refused the request"}.`;
  if (status === 413) return "Not saved: the drawing is too large to send.";
  if (status === 429) {
    const wait = Number.parseInt(retryAfter, 10);
    const when = Number.isFinite(wait) && wait > 0 ? `in ${wait} seconds` : "in a minute";
    return `Not saved: too many submissions in a short time. Submit again ${when}; your drawing is still here.`;
  }
  if (status >= 500) {
    return `Not saved: the server could not store the drawing (error ${status}). ` +
      "Your drawing is still here; try again in a moment.";
  }
  return `Not saved: unexpected answer from the server (error ${status}).`;
}

async function submit() {
  if (submitting) return;
  const image = pad.toDataURL();
  if (!image) {
    say("Draw a digit first, then submit.", "error");
    return;
  }
  if (chosenLabel === null) {
    say("Choose which digit you drew: press a key 0-9 or a digit button.", "error");
    return;
  }
  const label = chosenLabel;
  submitting = true;
  submitButton.setAttribute("aria-disabled", "true");
  say("Saving…", "info");
  let response;
  let body = null;
  try {
    response = await fetch("/labels", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ image, label }),
    });
    body = await response.json().catch(() => null);
  } catch {
    say("Not saved: can't reach the server. Your drawing is still here; try again.", "error");
    return;
  } finally {
    submitting = false;
    submitButton.removeAttribute("aria-disabled");
  }
  if (response.status !== 201) {
    say(failureMessage(response.status, body, response.headers.get("Retry-After")), "error");
    return;
  }
  const savedLabel = body && Number.isInteger(body.label) ? body.label : label;
  let message = `Saved as ${savedLabel}. Thank you!`;
  if (body && Number.isInteger(body.prediction) && body.prediction !== savedLabel) {
    message += ` The model read it as ${body.prediction}, so this one will teach it something.`;
  }
  say(`${message} Draw the next digit.`, "success");
  // Ready for the next one: empty canvas, no label chosen (so the last label
  // is never silently reused for a different digit).
  pad.reset();
  chooseLabel(null);
}

for (const button of labelButtons) {
  button.addEventListener("click", () => chooseLabel(Number(button.dataset.label)));
}
submitButton.addEventListener("click", submit);
byTestId("clear").addEventListener("click", () => pad.clear());
bindUndoButton(pad, byTestId("undo"));
bindDrawingShortcuts(pad);

document.addEventListener("keydown", (event) => {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
  if (/^[0-9]$/.test(event.key)) {
    event.preventDefault();
    chooseLabel(Number(event.key));
  } else if (event.key === "Enter") {
    // Enter on a focused button or link is that control's own action.
    const focused = document.activeElement;
    if (focused && focused.closest("button, a, input, select, textarea")) return;
    event.preventDefault();
    submit();
  }
});
