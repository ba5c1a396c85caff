// The answer panel (markup: _prediction_panel.html). One headline slot says
// what is happening now; the panel's data-state is one of
//   empty      nothing drawn
//   pending    something drawn, its first answer not back yet
//   sure | probably | unsure | not-digit   an answer (data-kind: digit | number)
//   error      the recognizer could not be reached or failed; Retry asks again
// and data-stale="true" while a newer drawing than the answer shown is being
// read (the answer is dimmed, "Reading…" shows). The wording is reading.js's.
import { describe, formatPercent, ranked, readAnswer } from "./reading.js";

const TOP_ROWS = 3;  // probability rows shown before "Show all 10 digits"

export class PredictionView {
  #root;
  #glyph;
  #verdict;
  #detail;
  #retry;
  #parts;
  #single;
  #preview;
  #list;
  #rows;
  #toggle;
  #announcer;
  #boxes;
  #lowConfidence;
  #mode;
  #emptyVerdict;
  #answer = null;
  #busy = false;
  #onRetry = () => {};

  /**
   * @param root   the panel (data-testid="answer")
   * @param boxes  the layer over the canvas where each part's box is drawn, or null
   */
  constructor(root, boxes = null) {
    this.#root = root;
    const part = (testid) => root.querySelector(`[data-testid="${testid}"]`);
    this.#glyph = part("prediction");
    this.#verdict = part("verdict");
    this.#detail = part("confidence");
    this.#retry = part("retry");
    this.#parts = part("parts");
    this.#single = part("single-detail");
    this.#preview = part("preview");
    this.#list = part("probabilities");
    this.#rows = Array.from(this.#list.querySelectorAll("li[data-digit]"));
    this.#toggle = part("toggle-probabilities");
    this.#announcer = part("announcer");
    this.#boxes = boxes;
    // The server's LOW_CONFIDENCE setting, passed as a data attribute (no inline script).
    const threshold = Number.parseFloat(root.dataset.lowConfidence);
    this.#lowConfidence = Number.isFinite(threshold) ? threshold : 0.6;
    this.#mode = root.dataset.mode === "digit" ? "digit" : "number";
    this.#emptyVerdict = this.#verdict.textContent;
    this.#retry.addEventListener("click", () => {
      // The button goes once reading starts: keep the keyboard in the headline slot.
      this.#glyph.parentElement.focus();
      this.#onRetry();
    });
    this.#toggle.addEventListener("click", () => this.#setExpanded(this.#list.dataset.expanded !== "true"));
    this.#setExpanded(false);
  }

  /** The answer on screen ({verdict, number, confidence, parts}, reading.js), or null. */
  get answer() { return this.#answer; }

  /** The one digit shown now, or null (nothing, several parts, not a digit). */
  get digit() {
    const answer = this.#answer;
    if (!answer || answer.parts.length !== 1 || answer.verdict === "not_a_digit") return null;
    return answer.parts[0].digit;
  }

  /** What Retry does (the page asks the predictor again). */
  set onRetry(callback) { this.#onRetry = callback; }

  /** A newer drawing than the one answered is being read. */
  setBusy(busy) {
    this.#busy = busy;
    this.#root.setAttribute("aria-busy", String(busy));
    // Nothing answered on screen (empty, error, too small): say it is being read.
    if (busy && this.#answer === null && this.#root.dataset.state !== "pending") {
      this.#setHeadline("pending", "", "Reading your drawing…", "");
      this.#showDetail(false);
    }
    this.#markStale(busy && this.#answer !== null);
  }

  #markStale(stale) {
    this.#root.dataset.stale = String(stale);
    if (this.#boxes) this.#boxes.dataset.stale = String(stale);
  }

  /** Show a /predict answer for `drawing` ({width, height}: the PNG the boxes refer to).
   * `final` answers (pen up, undo) are announced. */
  show(body, { final = true, drawing = null } = {}) {
    const answer = readAnswer(body, this.#lowConfidence);
    const words = describe(answer, this.#mode);
    this.#answer = answer;
    this.#root.dataset.kind = words.kind;
    this.#setHeadline(words.state, words.glyph, words.verdict, words.detail);
    this.#markStale(this.#busy);
    this.#showDetail(true);
    if (words.kind === "number") {
      this.#showParts(answer.parts);
    } else {
      this.#showSingle(answer.parts[0]);
    }
    this.#drawBoxes(words.kind === "number" ? answer.parts : [], drawing);
    if (final) this.#announcer.textContent = `${words.verdict} ${words.detail}`;
  }

  /** No drawing, no answer. */
  clear() {
    this.#answer = null;
    this.#root.dataset.kind = "digit";
    this.#setHeadline("empty", "", this.#emptyVerdict, "");
    this.#markStale(false);
    this.#showSingle(null);
    this.#showDetail(true);
    this.#drawBoxes([], null);
    this.#announcer.textContent = "";
  }

  /** There is ink, but too little to read (the server answered 422). */
  showUnreadable() {
    this.#answer = null;
    this.#root.dataset.kind = "digit";
    this.#setHeadline("not-digit", "", "That's too small to read.",
      this.#mode === "number" ? "Write a digit or a number, larger." : "Draw one digit, larger.");
    this.#markStale(false);
    this.#showDetail(false);
    this.#drawBoxes([], null);
    this.#announcer.textContent = "That's too small to read.";
  }

  /** The answer could not be fetched: say so in the headline, offer Retry,
   * and show no stale answer as if it were current. */
  showError(message) {
    this.#answer = null;
    this.#root.dataset.kind = "digit";
    this.#setHeadline("error", "", message, "Your drawing is still here.");
    this.#markStale(false);
    this.#showDetail(false);
    this.#drawBoxes([], null);
    this.#announcer.textContent = `${message} Your drawing is still here.`;
  }

  #setHeadline(state, glyph, verdict, detail) {
    this.#root.dataset.state = state;
    this.#glyph.textContent = glyph;
    this.#verdict.textContent = verdict;
    this.#detail.textContent = detail;
    this.#retry.hidden = state !== "error";
  }

  #showDetail(visible) {
    this.#root.querySelector('[data-testid="detail"]').hidden = !visible;
  }

  #showSingle(part) {
    this.#parts.hidden = true;
    this.#parts.replaceChildren();
    this.#single.hidden = false;
    const probabilities = part && part.probabilities;
    const order = probabilities ? ranked(probabilities) : this.#rows.map((_, digit) => ({ digit, probability: 0 }));
    const top = part && part.digit;
    // Most likely first; the list shows the top three until expanded.
    order.forEach(({ digit, probability }, rank) => {
      const row = this.#rows[digit];
      this.#list.append(row);
      row.dataset.rank = String(rank);
      if (probabilities) {
        row.dataset.probability = probability.toFixed(4);
        row.querySelector(".prob-value").textContent = formatPercent(probability);
      } else {
        delete row.dataset.probability;
        row.querySelector(".prob-value").textContent = "–";
      }
      row.classList.toggle("is-top", digit === top);
      // CSSOM, not a style attribute: allowed under style-src 'self'.
      row.style.setProperty("--probability", String(probability));
    });
    this.#toggle.hidden = !probabilities;
    // Not a digit: what the model saw, but no bars naming digits it does not see.
    this.#list.parentElement.hidden = Boolean(part && part.verdict === "not_a_digit");
    this.#setPreview(this.#preview, part && part.preview);
  }

  #showParts(parts) {
    this.#single.hidden = true;
    this.#parts.hidden = false;
    this.#parts.replaceChildren(...parts.map((part, index) => {
      const item = document.createElement("li");
      item.className = "part";
      item.dataset.testid = "part";
      item.dataset.verdict = part.verdict;
      const digit = document.createElement("span");
      digit.className = "part-digit";
      digit.textContent = part.digit === null ? "?" : String(part.digit);
      const share = document.createElement("span");
      share.className = "part-confidence";
      share.textContent = part.verdict === "not_a_digit" ? "not a digit" : formatPercent(part.confidence);
      const frame = document.createElement("span");
      frame.className = "preview-frame part-preview";
      const image = document.createElement("img");
      image.width = 56;
      image.height = 56;
      image.alt = `Digit ${index + 1} as the model saw it: 28 by 28 pixels`;
      frame.append(image);
      this.#setPreview(image, part.preview);
      item.append(digit, share, frame);
      return item;
    }));
  }

  #setPreview(image, dataUrl) {
    if (dataUrl) {
      image.src = dataUrl;
      image.hidden = false;
    } else {
      image.hidden = true;
      image.removeAttribute("src");
    }
    // The frame shows "nothing yet" (not a black square) until there is a preview.
    image.parentElement.dataset.empty = String(!dataUrl);
  }

  /** One box per part over the drawing, in the drawing's own proportions. */
  #drawBoxes(parts, drawing) {
    if (!this.#boxes) return;
    const usable = drawing && drawing.width > 0 && drawing.height > 0 ? parts.filter((p) => p.box) : [];
    this.#boxes.replaceChildren(...usable.map((part) => {
      const [x, y, w, h] = part.box;
      const box = document.createElement("div");
      box.className = "part-box";
      box.dataset.testid = "part-box";
      box.dataset.verdict = part.verdict;
      box.style.left = `${(100 * x) / drawing.width}%`;
      box.style.top = `${(100 * y) / drawing.height}%`;
      box.style.width = `${(100 * w) / drawing.width}%`;
      box.style.height = `${(100 * h) / drawing.height}%`;
      const label = document.createElement("span");
      label.className = "part-box-label";
      label.textContent = part.digit === null ? "?" : String(part.digit);
      box.append(label);
      return box;
    }));
  }

  #setExpanded(expanded) {
    this.#list.dataset.expanded = String(expanded);
    this.#toggle.setAttribute("aria-expanded", String(expanded));
    this.#toggle.textContent = expanded ? `Show the top ${TOP_ROWS} only` : "Show all 10 digits";
  }
}
