// What a /predict answer means, in words: no DOM here, so the wording can be
// checked on its own (tests/test_browser_answer_states.py imports this module
// in the browser).
//
// The answer contract is in the README ("POST /predict"): a verdict for the
// whole drawing ("digit" | "unsure" | "not_a_digit"), the number read, and one
// entry per part (digit) found, left to right. Answers in the older
// one-digit shape ({digit, probabilities, preview}) are read too.

/** At or above this confidence the page says "It's a 4."; below it, "Probably a 4."
 * (the server's verdict already says "unsure" below its LOW_CONFIDENCE). */
export const SURE_CONFIDENCE = 0.9;

/** "97%", never "100%" for a probability below 1 nor "0%" above 0. */
export function formatPercent(probability) {
  if (probability > 0 && probability < 0.01) return "<1%";
  if (probability > 0.99 && probability < 1) return ">99%";
  return `${Math.round(probability * 100)}%`;
}

/** "a 4", "an 8". */
export function withArticle(digit) {
  return `${digit === 8 ? "an" : "a"} ${digit}`;
}

/** Digits ordered by probability, most likely first. */
export function ranked(probabilities) {
  return probabilities
    .map((probability, digit) => ({ digit, probability }))
    .sort((a, b) => b.probability - a.probability);
}

const VERDICTS = new Set(["digit", "unsure", "not_a_digit"]);

function isDataUrl(value) {
  return typeof value === "string" && value.startsWith("data:image/png;base64,");
}

function readPart(raw, lowConfidence) {
  const probabilities = Array.isArray(raw.probabilities) ? raw.probabilities.map(Number) : null;
  const order = probabilities ? ranked(probabilities) : [];
  let verdict = VERDICTS.has(raw.verdict) ? raw.verdict : null;
  const confidence = Number.isFinite(raw.confidence) ? raw.confidence : (order[0] ? order[0].probability : null);
  if (verdict === null) verdict = confidence !== null && confidence >= lowConfidence ? "digit" : "unsure";
  const named = verdict !== "not_a_digit";
  const digit = named ? (Number.isInteger(raw.digit) ? raw.digit : (order[0] ? order[0].digit : null)) : null;
  const runnerUp = named ? (Number.isInteger(raw.runner_up) ? raw.runner_up : (order[1] ? order[1].digit : null)) : null;
  return {
    digit,
    verdict,
    confidence: named ? confidence : null,
    runnerUp,
    runnerUpProbability: runnerUp !== null && probabilities ? probabilities[runnerUp] : null,
    probabilities,
    notDigitScore: Number.isFinite(raw.not_digit_score) ? raw.not_digit_score : 0,
    box: Array.isArray(raw.box) && raw.box.length === 4 ? raw.box.map(Number) : null,
    preview: isDataUrl(raw.preview) ? raw.preview : null,
  };
}

/** A /predict body, in either shape, as {verdict, number, confidence, parts}. */
export function readAnswer(body, lowConfidence = 0.6) {
  const rawParts = Array.isArray(body.digits) && body.digits.length > 0 ? body.digits : [body];
  const parts = rawParts.map((raw) => readPart(raw, lowConfidence));
  if (parts.length === 1 && !parts[0].preview && isDataUrl(body.preview)) parts[0].preview = body.preview;
  let verdict = VERDICTS.has(body.verdict) ? body.verdict : null;
  if (verdict === null) {
    verdict = parts.some((p) => p.verdict === "not_a_digit") ? "not_a_digit"
      : parts.some((p) => p.verdict === "unsure") ? "unsure" : "digit";
  }
  const named = verdict !== "not_a_digit";
  const number = named
    ? (typeof body.number === "string" ? body.number : parts.map((p) => p.digit).join(""))
    : null;
  let confidence = Number.isFinite(body.confidence) ? body.confidence : null;
  if (confidence === null && named) confidence = parts.reduce((product, p) => product * (p.confidence ?? 0), 1);
  return { verdict, number, confidence: named ? confidence : null, parts };
}

/** "Part 2", "Parts 2 and 3", "Parts 1, 2 and 4". */
function partList(indexes) {
  const names = indexes.map((i) => String(i + 1));
  if (names.length === 1) return `Part ${names[0]}`;
  return `Parts ${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`;
}

/**
 * How the panel shows an answer:
 *   state    "sure" | "probably" | "unsure" | "not-digit"
 *   kind     "digit" (one part) | "number" (several)
 *   glyph    the large text: the digit or number ("?" for a part that is not a digit)
 *   verdict  the headline sentence; detail: the line under it
 * `mode` is "number" on the page that reads numbers, "digit" where one digit is asked for.
 */
export function describe(answer, mode = "number") {
  const { parts } = answer;
  const kind = parts.length > 1 ? "number" : "digit";
  if (answer.verdict === "not_a_digit") {
    const glyph = kind === "number" ? parts.map((p) => (p.digit === null ? "?" : String(p.digit))).join("") : "";
    if (kind === "digit") {
      return {
        state: "not-digit", kind, glyph,
        verdict: "That doesn't look like a digit.",
        detail: mode === "number" ? "Write a digit or a number, a bit larger." : "Draw one digit, a bit larger.",
      };
    }
    const bad = parts.flatMap((p, i) => (p.verdict === "not_a_digit" ? [i] : []));
    return {
      state: "not-digit", kind, glyph,
      verdict: `${partList(bad)} of ${parts.length} ${bad.length === 1 ? "doesn't look like a digit" : "don't look like digits"}.`,
      detail: "Write each digit clearly, a bit larger.",
    };
  }
  if (kind === "digit") {
    const [part] = parts;
    if (answer.verdict === "unsure") {
      const runner = part.runnerUp;
      return {
        state: "unsure", kind, glyph: String(part.digit),
        verdict: runner === null ? `Not sure: maybe ${part.digit}` : `Not sure: maybe ${part.digit}, or ${runner}`,
        detail: runner === null || part.runnerUpProbability === null
          ? `Only ${formatPercent(part.confidence)} sure.`
          : `${part.digit}: ${formatPercent(part.confidence)}, ${runner}: ${formatPercent(part.runnerUpProbability)}.`,
      };
    }
    const sure = answer.confidence >= SURE_CONFIDENCE;
    return {
      state: sure ? "sure" : "probably", kind, glyph: String(part.digit),
      verdict: sure ? `It's ${withArticle(part.digit)}.` : `Probably ${withArticle(part.digit)}.`,
      detail: `${formatPercent(answer.confidence)} sure.`,
    };
  }
  if (answer.verdict === "unsure") {
    const doubtful = parts.findIndex((p) => p.verdict === "unsure");
    const part = parts[Math.max(0, doubtful)];
    return {
      state: "unsure", kind, glyph: answer.number,
      verdict: `Not sure: maybe ${answer.number}`,
      detail: part.runnerUp === null
        ? `Digit ${doubtful + 1} is unclear.`
        : `Digit ${doubtful + 1} could be ${part.digit} or ${part.runnerUp}.`,
    };
  }
  const sure = answer.confidence >= SURE_CONFIDENCE;
  return {
    state: sure ? "sure" : "probably", kind, glyph: answer.number,
    verdict: sure ? `It's ${answer.number}.` : `Probably ${answer.number}.`,
    detail: `${formatPercent(answer.confidence)} sure of all ${parts.length} digits.`,
  };
}
