// Ask the server what the drawing is, as the person draws.
//
// While the pen moves, requests are throttled, not debounced: one goes out at
// most every THROTTLE_MS, and never while another is still in flight, so an
// answer appears during a long continuous stroke (a debounce would wait for
// the pen to rest, which in a flowing stroke it never does). When the drawing
// changes for good (pen up, undo, clear) a request goes out at once and any
// request in flight is aborted.
//
// Every request gets a sequence number; an answer is shown only if it is newer
// than the one on screen, so a late answer never replaces a newer one.

export const THROTTLE_MS = 150;

export class LivePredictor {
  #getDrawing;
  #handlers;
  #endpoint;
  #throttleMs;
  #timer = 0;
  #sequence = 0;     // the newest request sent
  #shown = 0;        // the request whose outcome is on screen
  #controller = null;
  #inFlight = false;
  #dirty = false;    // the drawing changed since the last request went out
  #lastSent = -Infinity;

  /**
   * @param getDrawing () => {image: PNG data URL, width, height}, or null when empty
   * @param handlers   {onBusy(bool), onResult(result, {final, drawing}), onEmpty(),
   *                    onUnreadable(), onError(message)}
   *                   onEmpty: nothing is drawn; onUnreadable: there is ink, but
   *                   the server found nothing to read (422).
   */
  constructor(getDrawing, handlers, { endpoint = "/predict", throttleMs = THROTTLE_MS } = {}) {
    this.#getDrawing = getDrawing;
    this.#handlers = handlers;
    this.#endpoint = endpoint;
    this.#throttleMs = throttleMs;
  }

  /** The pen moved: predict soon, at most every THROTTLE_MS. */
  schedule() {
    this.#dirty = true;
    this.#handlers.onBusy(true);
    if (this.#inFlight || this.#timer) return;  // the in-flight answer's return sends the next
    const wait = Math.max(0, this.#lastSent + this.#throttleMs - performance.now());
    this.#timer = setTimeout(() => {
      this.#timer = 0;
      this.#send({ final: false });
    }, wait);
  }

  /** The drawing changed for good (pen up, undo, clear, retry): predict now.
   * `final` answers are the ones worth announcing to screen readers. */
  predictNow({ final = true } = {}) {
    this.#stopPending();
    this.#send({ final });
  }

  /** Forget any pending or in-flight request (the drawing was reset). */
  cancel() {
    this.#stopPending();
    this.#dirty = false;
    this.#shown = ++this.#sequence;
    this.#handlers.onBusy(false);
  }

  #stopPending() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#controller?.abort();
    this.#controller = null;
    this.#inFlight = false;
  }

  #send({ final }) {
    this.#dirty = false;
    const sequence = ++this.#sequence;
    const drawing = this.#getDrawing();
    if (!drawing) {
      this.#shown = sequence;
      this.#handlers.onBusy(false);
      this.#handlers.onEmpty();
      return;
    }
    const controller = new AbortController();
    this.#controller = controller;
    this.#inFlight = true;
    this.#lastSent = performance.now();
    this.#handlers.onBusy(true);
    this.#request(drawing.image, controller.signal).then((outcome) => {
      if (this.#controller === controller) {
        this.#controller = null;
        this.#inFlight = false;
      }
      if (controller.signal.aborted || sequence <= this.#shown) return;
      this.#shown = sequence;
      // Still busy if the drawing changed while this one was being answered.
      this.#handlers.onBusy(sequence !== this.#sequence || this.#dirty);
      if (outcome.kind === "result") {
        this.#handlers.onResult(outcome.result, { final, drawing });
      } else if (outcome.kind === "unreadable") {
        this.#handlers.onUnreadable();
      } else {
        this.#handlers.onError(outcome.message);
      }
      if (this.#dirty && !this.#inFlight) this.schedule();
    });
  }

  async #request(image, signal) {
    let response;
    let body = null;
    try {
      response = await fetch(this.#endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ image }),
        signal,
      });
      body = await response.json().catch(() => null);
    } catch (error) {
      if (error.name === "AbortError") return { kind: "aborted" };
      return { kind: "error", message: "Can't reach the recognizer. Check your connection." };
    }
    if (response.ok && body && (Array.isArray(body.digits) || Array.isArray(body.probabilities))) {
      return { kind: "result", result: body };
    }
    if (response.status === 422) return { kind: "unreadable" };  // too faint to count as a drawing
    if (response.status === 429) {
      const wait = Number.parseInt(response.headers.get("Retry-After"), 10);
      const when = Number.isFinite(wait) && wait > 0 ? `in ${wait} s` : "in a moment";
      return { kind: "error", message: `Too many drawings sent in a short time. Try again ${when}.` };
    }
    if (response.status >= 500) {
      return { kind: "error", message: `The recognizer failed (error ${response.status}).` };
    }
    const detail = body && typeof body.error === "string" ? `: ${body.error}` : "";
    return { kind: "error", message: `The recognizer refused the drawing (error ${response.status})${detail}.` };
  }
}
