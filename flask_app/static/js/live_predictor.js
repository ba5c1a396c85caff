// Ask the server what the drawing is, as the person draws.
//
// While the pen moves, requests are debounced: one goes out once the pen has
// paused for DEBOUNCE_MS. When a stroke ends, one goes out at once. Every
// request gets a sequence number and the previous one is aborted, so an answer
// that arrives late can never replace the answer to a newer drawing.

export const DEBOUNCE_MS = 100;

export class LivePredictor {
  #getImage;
  #handlers;
  #endpoint;
  #debounceMs;
  #timer = 0;
  #sequence = 0;
  #controller = null;

  /**
   * @param getImage  () => PNG data URL of the drawing, or null when empty
   * @param handlers  {onBusy(bool), onResult(result, {final}), onEmpty(), onError(message)}
   */
  constructor(getImage, handlers, { endpoint = "/predict", debounceMs = DEBOUNCE_MS } = {}) {
    this.#getImage = getImage;
    this.#handlers = handlers;
    this.#endpoint = endpoint;
    this.#debounceMs = debounceMs;
  }

  /** The pen moved: predict once it pauses. */
  schedule() {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.predictNow({ final: false }), this.#debounceMs);
  }

  /** The drawing changed for good (pen up, undo, clear): predict now.
   * `final` answers are the ones worth announcing to screen readers. */
  predictNow({ final = true } = {}) {
    clearTimeout(this.#timer);
    this.#controller?.abort();
    this.#controller = null;
    const sequence = ++this.#sequence;
    const image = this.#getImage();
    if (!image) {
      this.#handlers.onBusy(false);
      this.#handlers.onEmpty();
      return;
    }
    const controller = new AbortController();
    this.#controller = controller;
    this.#handlers.onBusy(true);
    this.#request(image, controller.signal).then((outcome) => {
      if (sequence !== this.#sequence) return;  // a newer drawing has been sent since
      this.#controller = null;
      this.#handlers.onBusy(false);
      if (outcome.kind === "result") {
        this.#handlers.onResult(outcome.result, { final });
      } else if (outcome.kind === "empty") {
        this.#handlers.onEmpty();
      } else if (outcome.kind === "error") {
        this.#handlers.onError(outcome.message);
      }
    });
  }

  /** Forget any pending or in-flight request (the drawing was reset). */
  cancel() {
    clearTimeout(this.#timer);
    this.#controller?.abort();
    this.#controller = null;
    this.#sequence++;
    this.#handlers.onBusy(false);
  }

  async #request(image, signal) {
    let response;
    try {
      response = await fetch(this.#endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ image }),
        signal,
      });
    } catch (error) {
      if (error.name === "AbortError") return { kind: "aborted" };
      return { kind: "error", message: "Can't reach the recognizer. Check your connection; the next stroke will try again." };
    }
    const body = await response.json().catch(() => null);
    if (response.ok && body && Array.isArray(body.probabilities)) {
      return { kind: "result", result: body };
    }
    if (response.status === 422) return { kind: "empty" };  // too faint to count as a drawing
    const detail = body && typeof body.error === "string" ? `: ${body.error}` : "";
    return { kind: "error", message: `The recognizer answered with an error (${response.status})${detail}.` };
  }
}
