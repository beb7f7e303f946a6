/* global document, window, uPlot */
// The Larder dashboard: polls the service's JSON routes, shows the current values (each readout
// keeps the raw number in `data-value`, which the browser test compares to /api/cache/stats) and
// draws the recent history with uPlot. No framework, no build step.
'use strict';

const POLL_MS = 1000;
/** Points kept per chart: two minutes at one poll a second. */
const WINDOW = 120;
const CIRCUIT_LEVEL = { closed: 0, 'half-open': 1, open: 2 };

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- readouts

/** Shows `text` and keeps the raw `value` for tests and tooltips. */
function show(id, value, text = String(value)) {
  const el = $(id);
  el.dataset.value = value === undefined || value === null ? '' : String(value);
  el.textContent = text;
}

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 1 });

function ms(micros) {
  if (micros === 0) return '–';
  return micros < 1000 ? `${decimal.format(micros / 1000)} ms` : `${integer.format(micros / 1000)} ms`;
}

/** Redis round-trip percentiles of the slowest namespace (stats keep them per namespace). */
function latency(stats) {
  let p50 = 0;
  let p99 = 0;
  for (const ns of Object.values(stats.namespaces)) {
    if (ns.redisLatencyMicros.count === 0) continue;
    p50 = Math.max(p50, ns.redisLatencyMicros.p50);
    p99 = Math.max(p99, ns.redisLatencyMicros.p99);
  }
  return { p50, p99 };
}

function redisState(redis) {
  if (!redis.enabled) return 'not configured';
  if (redis.switchedOff) return 'switched off';
  return redis.ready ? 'connected' : 'unreachable';
}

// ---------------------------------------------------------------- charts

const charts = [];
const series = {
  time: [],
  hitRate: [],
  p50: [],
  p99: [],
  opsMemory: [],
  opsRedis: [],
  opsMiss: [],
  fallbacks: [],
  circuit: [],
  queueDepth: [],
  deadLetters: [],
};

function makeChart(id, lines, data, yRange) {
  const el = $(id);
  if (typeof uPlot === 'undefined') {
    el.innerHTML =
      '<p class="no-charts">Charts need uplot (npm install); the numbers above still update.</p>';
    return;
  }
  const chart = new uPlot(
    {
      width: Math.max(el.clientWidth, 300),
      height: 180,
      legend: { live: false },
      scales: yRange === undefined ? {} : { y: { range: yRange } },
      series: [{}, ...lines.map(([label, stroke]) => ({ label, stroke, width: 2, spanGaps: true }))],
    },
    [series.time, ...data.map((key) => series[key])],
    el,
  );
  chart.dataKeys = data;
  charts.push(chart);
}

function setUpCharts() {
  makeChart('chart-hit-rate', [['hit rate %', '#1f883d']], ['hitRate'], [0, 100]);
  makeChart(
    'chart-latency',
    [
      ['p50 ms', '#0969da'],
      ['p99 ms', '#8250df'],
    ],
    ['p50', 'p99'],
  );
  makeChart(
    'chart-ops',
    [
      ['memory hits/s', '#1f883d'],
      ['redis hits/s', '#0969da'],
      ['misses/s', '#cf222e'],
    ],
    ['opsMemory', 'opsRedis', 'opsMiss'],
  );
  makeChart('chart-fallbacks', [['fallbacks/s', '#b76e00']], ['fallbacks']);
  makeChart('chart-circuit', [['circuit', '#cf222e']], ['circuit'], [0, 3]);
  makeChart(
    'chart-jobs',
    [
      ['queue depth', '#0969da'],
      ['dead letters', '#cf222e'],
    ],
    ['queueDepth', 'deadLetters'],
  );
  window.addEventListener('resize', () => {
    for (const chart of charts)
      chart.setSize({ width: Math.max(chart.root.parentElement.clientWidth, 300), height: 180 });
  });
}

function push(key, value) {
  const list = series[key];
  list.push(value);
  if (list.length > WINDOW) list.shift();
}

function redraw() {
  for (const chart of charts) chart.setData([series.time, ...chart.dataKeys.map((key) => series[key])]);
}

// ---------------------------------------------------------------- polling

/** GET as JSON; `undefined` for a 404 (a route that has not landed, e.g. /api/jobs). */
async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store', headers: { accept: 'application/json' } });
  if (res.status === 404) return undefined;
  if (!res.ok && res.status !== 503) throw new Error(`${url}: HTTP ${res.status}`);
  return res.json();
}

let previous; // { at, stats } of the last poll, for rates

function render(stats, jobs, health, now) {
  const totals = stats.totals;
  show('hit-rate', totals.hitRate, `${decimal.format(totals.hitRate * 100)} %`);
  show('hits', totals.hits.total, integer.format(totals.hits.total));
  show('hits-memory', totals.hits.memory, integer.format(totals.hits.memory));
  show('hits-redis', totals.hits.redis, integer.format(totals.hits.redis));
  show('misses', totals.misses, integer.format(totals.misses));
  const { p50, p99 } = latency(stats);
  show('latency-p50', p50, ms(p50));
  show('latency-p99', p99, ms(p99));
  show('fallbacks', totals.fallbacks, integer.format(totals.fallbacks));

  const circuit = stats.redis.circuit;
  const circuitEl = $('circuit');
  show('circuit', circuit);
  circuitEl.className = `value state-${circuit}`;
  const state = redisState(stats.redis);
  show('redis-state', state);
  updateToggle(stats.redis);

  let rates = { memory: 0, redis: 0, miss: 0, fallbacks: 0 };
  if (previous !== undefined) {
    const seconds = Math.max((now - previous.at) / 1000, 0.001);
    const before = previous.stats.totals;
    const per = (a, b) => Math.max(a - b, 0) / seconds;
    rates = {
      memory: per(totals.hits.memory, before.hits.memory),
      redis: per(totals.hits.redis, before.hits.redis),
      miss: per(totals.misses, before.misses),
      fallbacks: per(totals.fallbacks, before.fallbacks),
    };
  }
  previous = { at: now, stats };
  show('ops-memory', Math.round(rates.memory), integer.format(rates.memory));
  show('ops-redis', Math.round(rates.redis), integer.format(rates.redis));
  show('ops-miss', Math.round(rates.miss), integer.format(rates.miss));

  let depth = null;
  let dead = null;
  if (jobs === undefined) {
    show('queue-depth', null, 'jobs: n/a');
    show('dead-letters', null, 'jobs: n/a');
  } else {
    depth = jobs.queues.reduce((sum, q) => sum + q.waiting + q.active + q.delayed, 0);
    dead = jobs.deadLetters.count;
    show('queue-depth', depth, integer.format(depth));
    show('dead-letters', dead, integer.format(dead));
  }

  if (health !== undefined) {
    const pill = $('health');
    pill.className = `pill ${health.status}`;
    show(
      'health',
      health.status,
      health.reason === undefined ? health.status : `${health.status}: ${health.reason}`,
    );
  }
  show('updated', now, `updated ${new Date(now).toLocaleTimeString()}`);

  push('time', now / 1000);
  push('hitRate', totals.hitRate * 100);
  push('p50', p50 / 1000);
  push('p99', p99 / 1000);
  push('opsMemory', rates.memory);
  push('opsRedis', rates.redis);
  push('opsMiss', rates.miss);
  push('fallbacks', rates.fallbacks);
  push('circuit', stats.redis.switchedOff ? 3 : (CIRCUIT_LEVEL[circuit] ?? null));
  push('queueDepth', depth);
  push('deadLetters', dead);
  redraw();
}

async function poll() {
  try {
    // Jobs and health are extras: the numbers from /api/cache/stats show even when they fail.
    const [stats, jobs, health] = await Promise.all([
      getJson('/api/cache/stats?tenants=false'),
      getJson('/api/jobs').catch(() => undefined),
      getJson('/api/health').catch(() => undefined),
    ]);
    render(stats, jobs, health, Date.now());
  } catch (error) {
    const pill = $('health');
    pill.className = 'pill down';
    show('health', 'unreachable', `service unreachable: ${error.message}`);
  } finally {
    void refreshDeadLetters();
    window.setTimeout(poll, POLL_MS);
  }
}

// ---------------------------------------------------------------- admin

async function send(method, url, body) {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) {
    const error = new Error(json.error?.message ?? `HTTP ${res.status}`);
    error.status = res.status;
    throw error;
  }
  return json;
}

function setMessage(el, text, isError = false) {
  el.textContent = text;
  el.classList.toggle('error', isError);
}

function message(id, text, isError = false) {
  setMessage($(id), text, isError);
}

function showSession(session) {
  const admin = session.admin === true;
  $('login-form').hidden = admin;
  $('admin-controls').hidden = !admin;
  $('session-info').textContent =
    admin && session.expiresAt ? `(until ${new Date(session.expiresAt).toLocaleString()})` : '';
  if (admin) {
    void refreshDeadLetters();
  } else {
    $('dead-letter-rows').replaceChildren();
    message('dead-letter-status', '');
    message('dead-letter-message', '');
  }
}

// ---------------------------------------------------------------- dead letters

/** Letters listed: the oldest ones (the API lists oldest first); the count says how many in all. */
const DEAD_LETTER_LIMIT = 20;
let deadLettersLoading = false;

/**
 * Reads `GET /api/jobs/dead-letters` while the admin controls show. A failure (503 while Redis is
 * unreachable in BullMQ mode) is shown above the table, which keeps the last list, greyed out.
 */
async function refreshDeadLetters() {
  if (deadLettersLoading || $('admin-controls').hidden) return;
  deadLettersLoading = true;
  try {
    const res = await fetch(`/api/jobs/dead-letters?limit=${DEAD_LETTER_LIMIT}`, {
      cache: 'no-store',
      headers: { accept: 'application/json' },
    });
    const body = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(body.error?.message ?? `HTTP ${res.status}`);
    if ($('admin-controls').hidden) return; // logged out meanwhile
    renderDeadLetters(body);
    $('dead-letter-table').classList.remove('stale');
    message('dead-letter-status', '');
  } catch (error) {
    $('dead-letter-table').classList.add('stale');
    message('dead-letter-status', `Dead letters unavailable: ${error.message}`, true);
  } finally {
    deadLettersLoading = false;
  }
}

/** Updates the table in place: rows stay while their letter is listed (so do Retry results). */
function renderDeadLetters({ count, deadLetters }) {
  const tbody = $('dead-letter-rows');
  const listed = new Set(deadLetters.map((letter) => letter.id));
  const shown = new Map();
  for (const row of [...tbody.rows]) {
    if (listed.has(row.dataset.id)) shown.set(row.dataset.id, row);
    else row.remove();
  }
  deadLetters.forEach((letter, index) => {
    const row = shown.get(letter.id) ?? deadLetterRow(letter);
    if (tbody.rows[index] !== row) tbody.insertBefore(row, tbody.rows[index] ?? null);
  });
  show(
    'dead-letter-count',
    count,
    count > deadLetters.length ? `(oldest ${deadLetters.length} of ${integer.format(count)})` : `(${count})`,
  );
  $('dead-letter-table').hidden = deadLetters.length === 0;
  $('dead-letter-empty').hidden = deadLetters.length !== 0;
}

function cell(row, testId, text, title) {
  const td = row.insertCell();
  td.dataset.testid = testId;
  td.textContent = text;
  if (title !== undefined) td.title = title;
  return td;
}

function truncate(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** One row; every value goes in as text, never as markup. */
function deadLetterRow(letter) {
  const row = document.createElement('tr');
  row.dataset.testid = 'dead-letter-row';
  row.dataset.id = letter.id;
  const failedAt = new Date(letter.failedAt);
  cell(
    row,
    'dead-letter-failed-at',
    Number.isNaN(failedAt.getTime()) ? String(letter.failedAt ?? '') : failedAt.toLocaleString(),
    String(letter.failedAt ?? ''),
  );
  cell(row, 'dead-letter-queue', String(letter.queue ?? ''), `job name: ${letter.name}`);
  cell(row, 'dead-letter-job', String(letter.jobId ?? ''), `dead letter ${letter.id}`);
  const data = JSON.stringify(letter.data) ?? '';
  cell(row, 'dead-letter-data', truncate(data, 80), data).className = 'code';
  cell(row, 'dead-letter-reason', String(letter.failedReason ?? ''));
  cell(row, 'dead-letter-attempts', String(letter.attempts ?? ''));

  const action = row.insertCell();
  action.className = 'action';
  const button = document.createElement('button');
  button.type = 'button';
  button.textContent = 'Retry';
  button.dataset.testid = 'dead-letter-retry';
  const result = document.createElement('span');
  result.className = 'message';
  result.dataset.testid = 'dead-letter-result';
  result.setAttribute('role', 'status');
  action.append(button, ' ', result);
  button.addEventListener('click', () => retryDeadLetter(letter.id, row, button, result));
  return row;
}

/** `POST /api/jobs/dead-letters/:id/retry`; the outcome shows in the row and above the table. */
async function retryDeadLetter(id, row, button, result) {
  button.disabled = true;
  setMessage(result, 'retrying…');
  try {
    const job = await send('POST', `/api/jobs/dead-letters/${encodeURIComponent(id)}/retry`);
    const text = `re-queued as job ${job.id} in ${job.queue}${job.mode === 'inline' ? ' (inline)' : ''}`;
    setMessage(result, text);
    row.classList.add('retried');
    message('dead-letter-message', `Dead letter ${id} ${text}`);
    void refreshDeadLetters();
  } catch (error) {
    // 404: already re-driven (or gone); the next refresh drops the row. 503: try again later.
    button.disabled = error.status === 404;
    setMessage(result, error.message, true);
    message('dead-letter-message', `Retry of ${id} failed: ${error.message}`, true);
    if (error.status === 401) showSession({ admin: false });
  }
}

let redisSwitchedOff = false;

function updateToggle(redis) {
  redisSwitchedOff = redis.switchedOff === true;
  const toggle = $('redis-toggle');
  toggle.disabled = !redis.enabled;
  toggle.textContent = !redis.enabled
    ? 'Redis not configured'
    : redisSwitchedOff
      ? 'Resume Redis'
      : 'Pause Redis';
  toggle.dataset.value = redisSwitchedOff ? 'off' : 'on';
}

function setUpAdmin() {
  $('login-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      showSession(await send('POST', '/api/session/login', { token: $('login-token').value }));
      $('login-token').value = '';
      message('login-message', '');
    } catch (error) {
      message('login-message', error.message, true);
    }
  });

  $('logout').addEventListener('click', async () => {
    await send('POST', '/api/session/logout').catch(() => undefined);
    showSession({ admin: false });
  });

  $('invalidate-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { namespace: $('invalidate-namespace').value.trim() };
    const tenant = $('invalidate-tenant').value.trim();
    const tag = $('invalidate-tag').value.trim();
    if (tenant !== '') body.tenant = tenant;
    if (tag !== '') body.tag = tag;
    try {
      const done = await send('POST', '/api/admin/invalidate', body);
      const scope = [done.namespace, done.tenant].filter(Boolean).join(' / ');
      message(
        'invalidate-result',
        done.action === 'clear' ? `cleared ${scope}` : `invalidated tag ${done.tag} in ${scope}`,
      );
    } catch (error) {
      message('invalidate-result', error.message, true);
      if (/log in|admin token/i.test(error.message)) showSession({ admin: false });
    }
  });

  $('redis-toggle').addEventListener('click', async () => {
    try {
      const done = await send('POST', '/api/admin/redis', { enabled: redisSwitchedOff });
      updateToggle(done.redis);
      message(
        'redis-message',
        done.redis.switchedOff ? 'Redis paused: serving from memory' : 'Redis resumed',
      );
    } catch (error) {
      message('redis-message', error.message, true);
    }
  });

  getJson('/api/session')
    .then((session) => showSession(session ?? { admin: false }))
    .catch(() => showSession({ admin: false }));
}

setUpCharts();
setUpAdmin();
void poll();
