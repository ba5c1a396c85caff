// The drawing page (GET /): draw, and see the model's answer as you draw.
import { DrawingPad, bindDrawingShortcuts, bindUndoButton } from "./canvas.js";
import { LivePredictor } from "./live_predictor.js";
import { PredictionView } from "./prediction_view.js";

const byTestId = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const pad = new DrawingPad(byTestId("canvas"));
const view = new PredictionView(byTestId("answer"));
const predictor = new LivePredictor(() => pad.toDataURL(), {
  onBusy: (busy) => view.setBusy(busy),
  onResult: (result, { final }) => view.show(result, { final }),
  onEmpty: () => view.clear(),
  onError: (message) => view.showError(message),
});

pad.addEventListener("strokemove", () => predictor.schedule());
pad.addEventListener("change", () => predictor.predictNow());

byTestId("clear").addEventListener("click", () => pad.clear());
bindUndoButton(pad, byTestId("undo"));
bindDrawingShortcuts(pad);
