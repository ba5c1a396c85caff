// The drawing surface both pages share (one module, not a copy).
//
// Strokes are kept as data, in coordinates relative to the canvas (0..1), so
// the picture can be re-rendered at any time: after an undo, when the canvas
// changes size, when the device pixel ratio or the colour scheme changes, and
// for export at a size independent of the screen.
//
// Pointer Events cover mouse, touch and pen with one code path. The canvas has
// `touch-action: none` (app.css) so a finger draws instead of scrolling or
// zooming the page.

// Stroke width as a fraction of the canvas HEIGHT: like a marker on paper, it
// keeps the same proportion to the writing whatever the canvas size. The
// height, not the width: the drawing area for numbers is much wider than tall,
// and a person writes a digit about as tall as the area whatever its width, so
// a width-based brush would turn digits into blobs on a wide canvas. 5% of the
// height is the brush the model (v3) is trained and benchmarked for.
export const LINE_WIDTH_FRACTION = 0.05;

// Exported drawings are light ink on a transparent background, MNIST's
// polarity, whatever the page's theme: the server sees the same kind of image
// from every visitor, and a stored sample does not depend on dark mode.
const EXPORT_INK = "#ffffff";

// Points closer than this (in CSS pixels) to the previous one add nothing but
// work; pens report at up to 240 Hz.
const MIN_POINT_DISTANCE = 0.75;

/** Trace one stroke: quadratic curves through the midpoints of its points,
 * which is smooth, passes near every sample and costs nothing to compute. */
function traceStroke(ctx, points, width, height, lineWidth) {
  const xy = (i) => [points[i][0] * width, points[i][1] * height];
  if (points.length === 1) {
    // A tap is a dot, as round caps would draw it.
    const [x, y] = xy(0);
    ctx.beginPath();
    ctx.arc(x, y, lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    return;
  }
  ctx.beginPath();
  let [x0, y0] = xy(0);
  ctx.moveTo(x0, y0);
  for (let i = 1; i < points.length - 1; i++) {
    const [x1, y1] = xy(i);
    const [x2, y2] = xy(i + 1);
    ctx.quadraticCurveTo(x1, y1, (x1 + x2) / 2, (y1 + y2) / 2);
  }
  [x0, y0] = xy(points.length - 1);
  ctx.lineTo(x0, y0);
  ctx.stroke();
}

/** Draw `strokes` (relative coordinates) onto a context whose user space is
 * `width` x `height`. */
export function renderStrokes(ctx, strokes, width, height, color) {
  const lineWidth = LINE_WIDTH_FRACTION * height;
  ctx.lineWidth = lineWidth;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  for (const points of strokes) {
    if (points.length > 0) traceStroke(ctx, points, width, height, lineWidth);
  }
}

/**
 * A canvas you draw digits on.
 *
 * Events (all plain `Event`s/`CustomEvent`s on the pad itself):
 *   "strokestart" - a stroke began
 *   "strokemove" - the stroke in progress grew (use it to predict while drawing)
 *   "change"     - the finished drawing changed; detail.reason is one of
 *                  "stroke", "undo", "clear", "reset"
 */
export class DrawingPad extends EventTarget {
  #canvas;
  #ctx;
  #strokes = [];      // finished strokes: arrays of [x, y] in 0..1
  #history = [];      // earlier values of #strokes, for undo
  #active = null;     // the stroke being drawn: {pointerId, points, rect}
  #cssWidth = 0;
  #cssHeight = 0;
  #frame = 0;
  #ink = "";

  constructor(canvas) {
    super();
    this.#canvas = canvas;
    this.#ctx = canvas.getContext("2d");
    this.#readInk();

    canvas.addEventListener("pointerdown", (event) => this.#onPointerDown(event));
    canvas.addEventListener("pointermove", (event) => this.#onPointerMove(event));
    canvas.addEventListener("pointerup", (event) => this.#onPointerEnd(event));
    canvas.addEventListener("pointercancel", (event) => this.#onPointerEnd(event));
    canvas.addEventListener("lostpointercapture", (event) => this.#onPointerEnd(event));
    // A long press must not open a menu or start a text selection mid-digit.
    canvas.addEventListener("contextmenu", (event) => event.preventDefault());

    // The backing store follows the element's size in device pixels, so lines
    // stay sharp on high-DPI screens and after zooming.
    const observer = new ResizeObserver((entries) => this.#onResize(entries[entries.length - 1]));
    try {
      observer.observe(canvas, { box: "device-pixel-content-box" });
    } catch {
      observer.observe(canvas);  // browsers without device-pixel boxes: CSS size x devicePixelRatio
    }
    this.#fitBackingStore(canvas.clientWidth, canvas.clientHeight, null);

    // The ink colour comes from the theme (CSS `color` of the canvas).
    window.matchMedia("(prefers-color-scheme: dark)")
      .addEventListener("change", () => { this.#readInk(); this.#requestRender(); });
    this.#publishState();
  }

  /** Number of strokes, the one being drawn included. */
  get strokeCount() { return this.#strokes.length + (this.#active ? 1 : 0); }

  get isEmpty() { return this.strokeCount === 0; }

  get canUndo() { return this.#history.length > 0; }

  /** Remove the last stroke (or bring back what "clear" removed). */
  undo() {
    if (this.#active) this.#abandonActiveStroke();
    if (!this.canUndo) return false;
    this.#strokes = this.#history.pop();
    this.#changed("undo");
    return true;
  }

  /** Empty the canvas; undo brings the drawing back. */
  clear() {
    if (this.#active) this.#abandonActiveStroke();
    if (this.#strokes.length === 0) return false;
    this.#history.push(this.#strokes);
    this.#strokes = [];
    this.#changed("clear");
    return true;
  }

  /** Empty the canvas and forget its history (after a drawing was submitted). */
  reset() {
    if (this.#active) this.#abandonActiveStroke();
    this.#strokes = [];
    this.#history = [];
    this.#changed("reset");
  }

  /** The drawing as a PNG data URL, or null when nothing is drawn. The stroke
   * in progress is included so predictions can run while drawing. */
  toDataURL() {
    const drawing = this.snapshot();
    return drawing && drawing.image;
  }

  /** The drawing as {image: PNG data URL, width, height} (the PNG's size in
   * pixels, which boxes in the server's answer refer to), or null when
   * nothing is drawn. */
  snapshot() {
    const strokes = this.#allStrokes();
    if (strokes.length === 0) return null;
    const width = Math.max(1, Math.round(this.#cssWidth));
    const height = Math.max(1, Math.round(this.#cssHeight));
    const exportCanvas = document.createElement("canvas");
    exportCanvas.width = width;
    exportCanvas.height = height;
    renderStrokes(exportCanvas.getContext("2d"), strokes, width, height, EXPORT_INK);
    return { image: exportCanvas.toDataURL("image/png"), width, height };
  }

  #allStrokes() {
    return this.#active ? [...this.#strokes, this.#active.points] : this.#strokes;
  }

  // --- input -------------------------------------------------------------

  #onPointerDown(event) {
    // One stroke at a time: a second finger or a right click does not draw.
    if (this.#active || !event.isPrimary) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();  // no text selection, no focus shuffle, no compat mouse events
    this.#canvas.setPointerCapture(event.pointerId);
    const rect = this.#canvas.getBoundingClientRect();
    this.#active = { pointerId: event.pointerId, rect, points: [] };
    this.#addPoint(event);
    this.#requestRender();
    this.#publishState();
    this.dispatchEvent(new Event("strokestart"));
  }

  #onPointerMove(event) {
    if (!this.#active || event.pointerId !== this.#active.pointerId) return;
    event.preventDefault();
    // Coalesced events carry the samples the browser merged into this frame:
    // without them fast strokes turn into polygons.
    const samples = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    let added = false;
    for (const sample of samples.length > 0 ? samples : [event]) added = this.#addPoint(sample) || added;
    if (added) {
      this.#requestRender();
      this.dispatchEvent(new Event("strokemove"));
    }
  }

  #onPointerEnd(event) {
    if (!this.#active || event.pointerId !== this.#active.pointerId) return;
    if (event.type === "pointerup") this.#addPoint(event);
    const { points } = this.#active;
    this.#active = null;
    if (this.#canvas.hasPointerCapture(event.pointerId)) {
      this.#canvas.releasePointerCapture(event.pointerId);
    }
    this.#history.push(this.#strokes);
    this.#strokes = [...this.#strokes, points];
    this.#changed("stroke");
  }

  #addPoint(event) {
    const { rect, points } = this.#active;
    const x = (event.clientX - rect.left) / rect.width;
    const y = (event.clientY - rect.top) / rect.height;
    if (!Number.isFinite(x) || !Number.isFinite(y)) return false;
    const last = points[points.length - 1];
    if (last) {
      const dx = (x - last[0]) * rect.width;
      const dy = (y - last[1]) * rect.height;
      if (dx * dx + dy * dy < MIN_POINT_DISTANCE * MIN_POINT_DISTANCE) return false;
    }
    points.push([x, y]);
    return true;
  }

  #abandonActiveStroke() {
    const { pointerId } = this.#active;
    this.#active = null;
    if (this.#canvas.hasPointerCapture(pointerId)) this.#canvas.releasePointerCapture(pointerId);
  }

  // --- output ------------------------------------------------------------

  #changed(reason) {
    this.#render();
    this.#publishState();
    this.dispatchEvent(new CustomEvent("change", { detail: { reason } }));
  }

  /** Mirror the state into the DOM, for CSS (the "draw here" hint) and tests. */
  #publishState() {
    this.#canvas.dataset.strokes = String(this.strokeCount);
    this.#canvas.dataset.empty = String(this.isEmpty);
  }

  #readInk() {
    this.#ink = getComputedStyle(this.#canvas).color || "#000";
  }

  #onResize(entry) {
    const device = entry.devicePixelContentBoxSize && entry.devicePixelContentBoxSize[0];
    const css = entry.contentBoxSize && entry.contentBoxSize[0];
    const cssWidth = css ? css.inlineSize : entry.contentRect.width;
    const cssHeight = css ? css.blockSize : entry.contentRect.height;
    this.#fitBackingStore(cssWidth, cssHeight,
      device ? [device.inlineSize, device.blockSize] : null);
  }

  #fitBackingStore(cssWidth, cssHeight, devicePixels) {
    if (cssWidth <= 0 || cssHeight <= 0) return;
    const ratio = window.devicePixelRatio || 1;
    let pixelWidth = Math.round(cssWidth * ratio);
    let pixelHeight = Math.round(cssHeight * ratio);
    // The device-pixel box is exact (snapped to the pixel grid) where the
    // browser knows it; trust it only when it agrees with devicePixelRatio,
    // since emulated ratios (devtools, test browsers) are not reflected in it.
    if (devicePixels && Math.abs(devicePixels[0] - pixelWidth) <= 1 &&
        Math.abs(devicePixels[1] - pixelHeight) <= 1) {
      [pixelWidth, pixelHeight] = devicePixels;
    }
    this.#cssWidth = cssWidth;
    this.#cssHeight = cssHeight;
    if (this.#canvas.width !== pixelWidth || this.#canvas.height !== pixelHeight) {
      this.#canvas.width = pixelWidth;   // also clears the canvas
      this.#canvas.height = pixelHeight;
    }
    this.#render();
  }

  #requestRender() {
    if (this.#frame) return;
    this.#frame = requestAnimationFrame(() => {
      this.#frame = 0;
      this.#render();
    });
  }

  #render() {
    if (this.#frame) {
      cancelAnimationFrame(this.#frame);
      this.#frame = 0;
    }
    const ctx = this.#ctx;
    const canvas = this.#canvas;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (this.#cssWidth <= 0 || this.#cssHeight <= 0) return;
    // Draw in CSS pixels; the transform maps them onto device pixels.
    ctx.setTransform(canvas.width / this.#cssWidth, 0, 0, canvas.height / this.#cssHeight, 0, 0);
    renderStrokes(ctx, this.#allStrokes(), this.#cssWidth, this.#cssHeight, this.#ink);
  }
}

function isEditable(element) {
  return element instanceof HTMLElement &&
    (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));
}

/** Keyboard shortcuts every drawing page has: Ctrl/Cmd+Z undoes the last
 * stroke, Escape clears. Both report through the pad's "change" event. */
export function bindDrawingShortcuts(pad, target = document) {
  target.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || isEditable(event.target)) return;
    const key = event.key.toLowerCase();
    if (key === "z" && (event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey) {
      event.preventDefault();
      pad.undo();
    } else if (key === "escape" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      if (pad.clear()) event.preventDefault();
    }
  });
}

/** Keep an undo button's disabled state in step with the pad. */
export function bindUndoButton(pad, button) {
  const update = () => { button.disabled = !pad.canUndo; };
  pad.addEventListener("change", update);
  button.addEventListener("click", () => pad.undo());
  update();
}
