// The review page's actions: relabel and delete through the JSON API.
// The list itself is rendered by the server; the session cookie authorises these calls.

const grid = document.querySelector('[data-testid="samples"]');
const statusLine = document.querySelector('[data-testid="status"]');
const totalCount = document.querySelector('[data-testid="total"]');
const filters = document.querySelector('[data-testid="filters"]');

function say(message, isError = false) {
  statusLine.textContent = message;
  statusLine.dataset.tone = isError ? 'error' : 'success'; // app.css colours .status by tone
}

async function callApi(method, sampleId, body) {
  const options = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    options.headers['Content-Type'] = 'application/json';
    options.body = JSON.stringify(body);
  }
  const response = await fetch(`${grid.dataset.api}/${encodeURIComponent(sampleId)}`, options);
  if (response.status === 401) {
    window.location.reload(); // the session ended: the page asks for the token again
    throw new Error('signed out');
  }
  if (!response.ok) {
    let message = `the server answered ${response.status}`;
    try {
      message = (await response.json()).error || message;
    } catch {
      // not JSON: keep the status
    }
    throw new Error(message);
  }
  return response.status === 204 ? null : response.json();
}

function setBusy(card, busy) {
  card.classList.toggle('review-card--busy', busy);
  for (const control of card.querySelectorAll('select, button')) control.disabled = busy;
}

async function relabel(card, select) {
  const label = Number(select.value);
  const previous = card.dataset.label;
  setBusy(card, true);
  try {
    const sample = await callApi('PATCH', card.dataset.id, { label });
    card.dataset.label = String(sample.label);
    card.querySelector('[data-testid="sample-label"]').textContent = String(sample.label);
    card.querySelector('img').alt = `drawing labelled ${sample.label}`;
    card.classList.toggle('review-card--disagreed', sample.disagreed);
    say(`Relabelled as ${sample.label}.`);
  } catch (error) {
    select.value = previous;
    say(`Could not relabel: ${error.message}`, true);
  } finally {
    setBusy(card, false);
  }
}

async function remove(card) {
  if (!window.confirm(`Delete this drawing labelled ${card.dataset.label}? This cannot be undone.`)) return;
  setBusy(card, true);
  try {
    await callApi('DELETE', card.dataset.id);
    card.remove();
    totalCount.textContent = String(Math.max(0, Number(totalCount.textContent) - 1));
    say('Deleted.');
  } catch (error) {
    setBusy(card, false);
    say(`Could not delete: ${error.message}`, true);
  }
}

grid.addEventListener('change', (event) => {
  const select = event.target.closest('select[data-action="relabel"]');
  if (select) relabel(select.closest('[data-testid="sample"]'), select);
});

grid.addEventListener('click', (event) => {
  const button = event.target.closest('button[data-action="delete"]');
  if (button) remove(button.closest('[data-testid="sample"]'));
});

// Filters apply as soon as they change; the Show button stays for keyboard users.
filters.addEventListener('change', () => filters.requestSubmit());
