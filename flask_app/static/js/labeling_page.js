// The labelling page (GET /labeling): draw one digit, say which digit it is,
// submit; the drawing is stored for fine-tuning. The model's live guess is
// shown beside it, so a person sees when their label disagrees.
//
// One digit per sample: a drawing the model reads as several digits is not
// submitted (the server refuses it too). A drawing the model calls "not a
// digit" can still be submitted after an explicit confirmation: if the person
// is right, it teaches the model the most.
import { DrawingPad, bindDrawingShortcuts, bindUndoButton } from "./canvas.js";
import { LivePredictor } from "./live_predictor.js";
import { PredictionView } from "./prediction_view.js";
import { withArticle } from "./reading.js";

const byTestId = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const pad = new DrawingPad(byTestId("canvas"));
const view = new PredictionView(byTestId("answer"), byTestId("part-boxes"));
const statusLine = byTestId("status");
const agreement = byTestId("agreement");
const agreementAnnouncer = byTestId("agreement-announcer");
const submitButton = byTestId("submit");
const submitText = submitButton.textContent;
const labelButtons = Array.from(document.querySelectorAll("[data-label]"));

let chosenLabel = null;
let submitting = false;
let confirmingNotADigit = false;  // Submit was pressed once on a "not a digit" drawing

function say(message, tone) {
  statusLine.textContent = message;
  statusLine.dataset.tone = tone;  // "info" | "success" | "warn" | "error": colour in CSS
  if (message) statusLine.scrollIntoView({ block: "nearest" });
}

/** A message from an earlier step is out of date once the person moves on. */
function dropStaleStatus() {
  if (!submitting) say("", "");
}

function setConfirming(confirming) {
  confirmingNotADigit = confirming;
  submitButton.textContent = confirming ? `Submit anyway as ${chosenLabel}` : submitText;
  submitButton.dataset.confirming = String(confirming);
}

/** What the model makes of the drawing, next to the label chosen. */
function agreementText() {
  const answer = view.answer;
  if (!answer) return ["", ""];
  if (answer.parts.length > 1) {
    return [`That looks like ${answer.parts.length} digits. Label one digit at a time: clear, and draw just one.`,
      "several"];
  }
  if (answer.verdict === "not_a_digit") {
    return chosenLabel === null
      ? ["The model doesn't think this is a digit.", "unsure"]
      : [`The model doesn't think this is a digit. If it is ${withArticle(chosenLabel)}, you can still submit it.`,
        "false"];
  }
  const guess = view.digit;
  const seen = answer.verdict === "unsure" ? `maybe ${withArticle(guess)}` : withArticle(guess);
  if (chosenLabel === null) return [`The model sees ${seen}.`, ""];
  if (guess === chosenLabel) return [`The model agrees: it sees ${seen} too.`, "true"];
  return [`You chose ${chosenLabel}; the model sees ${seen}. If you are sure, submit: ` +
    "samples the model gets wrong teach it the most.", "false"];
}

function updateAgreement({ announce = false } = {}) {
  const [text, agrees] = agreementText();
  agreement.textContent = text;
  agreement.dataset.agrees = agrees;
  // The line changes as the pen moves; screen readers hear it when it matters:
  // a label chosen, or the final answer to a drawing that has a label.
  if (announce && chosenLabel !== null) agreementAnnouncer.textContent = text;
  if (confirmingNotADigit && view.answer && view.answer.verdict !== "not_a_digit") setConfirming(false);
}

function chooseLabel(label) {
  chosenLabel = label;
  for (const button of labelButtons) {
    button.setAttribute("aria-pressed", String(Number(button.dataset.label) === label));
  }
  if (label !== null) dropStaleStatus();
  setConfirming(false);
  updateAgreement({ announce: true });
}

const predictor = new LivePredictor(() => pad.snapshot(), {
  onBusy: (busy) => view.setBusy(busy),
  onResult: (result, { final, drawing }) => {
    view.show(result, { final, drawing });
    updateAgreement({ announce: final });
  },
  onEmpty: () => { view.clear(); updateAgreement(); },
  onUnreadable: () => { view.showUnreadable(); updateAgreement(); },
  onError: (message) => { view.showError(message); updateAgreement(); },
});
view.onRetry = () => predictor.predictNow();

pad.addEventListener("strokestart", () => { dropStaleStatus(); setConfirming(false); });
pad.addEventListener("strokemove", () => predictor.schedule());
pad.addEventListener("change", (event) => {
  if (event.detail.reason === "reset") {
    predictor.cancel();
    view.clear();
    updateAgreement();
  } else {
    if (event.detail.reason !== "stroke") { dropStaleStatus(); setConfirming(false); }
    predictor.predictNow();
  }
});

/** Why a submission failed, in words a person can act on. */
function failureMessage(status, body, retryAfter) {
  const detail = body && typeof body.error === "string" ? body.error : "";
  if (status === 422) return `Not saved: ${detail || "the drawing looks empty"}. Draw one digit, then submit.`;
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

/** Whether the drawing may go to the server now; if not, say why. */
function readyToSubmit() {
  if (pad.isEmpty) {
    say("Draw a digit first, then submit.", "error");
    return false;
  }
  if (chosenLabel === null) {
    say("Choose which digit you drew: press a key 0-9 or a digit button.", "error");
    return false;
  }
  const answer = view.answer;
  if (answer && answer.parts.length > 1) {
    say("Not saved: one digit per drawing.", "error");
    return false;
  }
  if (answer && answer.verdict === "not_a_digit" && !confirmingNotADigit) {
    setConfirming(true);
    say(`Sure it is ${withArticle(chosenLabel)}? Press “Submit anyway as ${chosenLabel}” to save it.`, "warn");
    return false;
  }
  return true;
}

async function submit() {
  if (submitting || !readyToSubmit()) return;
  const image = pad.toDataURL();
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
    response = null;
  } finally {
    submitting = false;
    submitButton.removeAttribute("aria-disabled");
  }
  if (response === null) {
    say("Not saved: can't reach the server. Your drawing is still here; try again.", "error");
    return;
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
  // Ready for the next one: empty canvas, no label chosen (so the last label
  // is never silently reused for a different digit).
  pad.reset();
  chooseLabel(null);
  say(`${message} Draw the next digit.`, "success");
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
    // Enter on a focused control is that control's own action, except on a
    // label button: choosing is Space or a click, and after clicking a label
    // the next thing a person does is submit, as the hint says.
    const focused = document.activeElement;
    const onLabel = focused && focused.matches("[data-label]");
    if (!onLabel && focused && focused.closest("button, a, input, select, textarea")) return;
    event.preventDefault();
    submit();
  }
});
