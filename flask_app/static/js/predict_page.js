// The drawing page (GET /): write a digit or a number, and see the model's
// answer as you write.
import { DrawingPad, bindDrawingShortcuts, bindUndoButton } from "./canvas.js";
import { LivePredictor } from "./live_predictor.js";
import { PredictionView } from "./prediction_view.js";

const byTestId = (testid) => document.querySelector(`[data-testid="${testid}"]`);

const pad = new DrawingPad(byTestId("canvas"));
const view = new PredictionView(byTestId("answer"), byTestId("part-boxes"));
const predictor = new LivePredictor(() => pad.snapshot(), {
  onBusy: (busy) => view.setBusy(busy),
  onResult: (result, { final, drawing }) => view.show(result, { final, drawing }),
  onEmpty: () => view.clear(),
  onUnreadable: () => view.showUnreadable(),
  onError: (message) => view.showError(message),
});
view.onRetry = () => predictor.predictNow();

pad.addEventListener("strokemove", () => predictor.schedule());
pad.addEventListener("change", () => predictor.predictNow());

byTestId("clear").addEventListener("click", () => pad.clear());
bindUndoButton(pad, byTestId("undo"));
bindDrawingShortcuts(pad);
