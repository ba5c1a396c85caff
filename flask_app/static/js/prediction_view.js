// Show the model's answer honestly: the digit, how sure it is (with "not sure"
// wording below the configured threshold), every digit's probability as a bar,
// and the 28x28 image the model actually saw. Markup: _prediction_panel.html.

/** "97%", never "100%" for a probability below 1 nor "0%" above 0. */
export function formatPercent(probability) {
  if (probability > 0 && probability < 0.01) return "<1%";
  if (probability > 0.99 && probability < 1) return ">99%";
  return `${Math.round(probability * 100)}%`;
}

/** Digits ordered by probability, most likely first. */
export function ranked(probabilities) {
  return probabilities
    .map((probability, digit) => ({ digit, probability }))
    .sort((a, b) => b.probability - a.probability);
}

export class PredictionView {
  #root;
  #digit;
  #verdict;
  #confidence;
  #preview;
  #rows;
  #announcer;
  #error;
  #lowConfidence;
  #emptyVerdict;
  #current = null;

  constructor(root) {
    this.#root = root;
    const part = (testid) => root.querySelector(`[data-testid="${testid}"]`);
    this.#digit = part("prediction");
    this.#verdict = part("verdict");
    this.#confidence = part("confidence");
    this.#preview = part("preview");
    this.#announcer = part("announcer");
    this.#error = part("predict-error");
    this.#rows = Array.from(part("probabilities").querySelectorAll("li[data-digit]"));
    // The server's LOW_CONFIDENCE setting, passed as a data attribute (no inline script).
    const threshold = Number.parseFloat(root.dataset.lowConfidence);
    this.#lowConfidence = Number.isFinite(threshold) ? threshold : 0.6;
    this.#emptyVerdict = this.#verdict.textContent;
  }

  /** The digit shown now, or null. */
  get digit() { return this.#current ? this.#current.digit : null; }

  setBusy(busy) {
    this.#root.setAttribute("aria-busy", String(busy));
  }

  /** Show a /predict answer. `final` answers (pen up, undo) are announced. */
  show(result, { final = true } = {}) {
    const order = ranked(result.probabilities);
    const top = order[0];
    const unsure = top.probability < this.#lowConfidence;
    this.#current = { digit: top.digit, probability: top.probability, unsure };
    this.#hideError();

    this.#root.dataset.state = unsure ? "unsure" : "sure";
    this.#digit.textContent = String(top.digit);
    if (unsure) {
      const next = order[1];
      this.#verdict.textContent = `Not sure. Maybe a ${top.digit}?`;
      this.#confidence.textContent =
        `Only ${formatPercent(top.probability)} sure; ${next.digit} is next at ${formatPercent(next.probability)}.`;
    } else {
      this.#verdict.textContent = `It's a ${top.digit}.`;
      this.#confidence.textContent = `${formatPercent(top.probability)} sure.`;
    }

    for (const row of this.#rows) {
      const probability = result.probabilities[Number(row.dataset.digit)];
      row.dataset.probability = probability.toFixed(4);
      row.classList.toggle("is-top", Number(row.dataset.digit) === top.digit);
      // CSSOM, not a style attribute: allowed under style-src 'self'.
      row.style.setProperty("--probability", String(probability));
      row.querySelector(".prob-value").textContent = formatPercent(probability);
    }

    if (typeof result.preview === "string" && result.preview.startsWith("data:image/png;base64,")) {
      this.#preview.src = result.preview;
      this.#preview.hidden = false;
    }

    if (final) {
      this.#announcer.textContent = unsure
        ? `Not sure: maybe ${top.digit}, ${formatPercent(top.probability)}.`
        : `Prediction: ${top.digit}, ${formatPercent(top.probability)} sure.`;
    }
  }

  /** No drawing, no answer. */
  clear() {
    this.#current = null;
    this.#hideError();
    this.#root.dataset.state = "empty";
    this.#digit.textContent = "";
    this.#verdict.textContent = this.#emptyVerdict;
    this.#confidence.textContent = "";
    for (const row of this.#rows) {
      delete row.dataset.probability;
      row.classList.remove("is-top");
      row.style.setProperty("--probability", "0");
      row.querySelector(".prob-value").textContent = "–";
    }
    this.#preview.hidden = true;
    this.#preview.removeAttribute("src");
    this.#announcer.textContent = "";
  }

  /** The answer could not be fetched: say so, and don't show a stale one. */
  showError(message) {
    this.clear();
    this.#error.textContent = message;
    this.#error.hidden = false;
  }

  #hideError() {
    this.#error.hidden = true;
    this.#error.textContent = "";
  }
}
