'use strict';
// The sandbox page: no framework, no build step. Every call carries the token
// the server put in the page at this start; the state shown is what the server
// read from its database.
const $ = (id) => document.getElementById(id);
const token = document.querySelector('meta[name="sandbox-token"]').content;
let busy = false;
let zone = 'UTC';
let lastChat = '';
let epoch = 0; // bumped by every action

async function api(path, body) {
  const opts = {headers: {'X-Funnel-Sandbox-Token': token}};
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch('/sandbox/api/' + path, opts);
  let j = {};
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  if (!r.ok) throw new Error(j.error || r.status + ' ' + r.statusText);
  return j;
}

function notice(msg) {
  const n = $('notice');
  n.textContent = '';
  if (!msg) { n.hidden = true; return; }
  const span = document.createElement('span');
  span.textContent = msg;
  const close = document.createElement('button');
  close.textContent = '×';
  close.setAttribute('aria-label', 'Dismiss');
  close.onclick = () => notice('');
  n.append(span, close);
  n.hidden = false;
}

function contact() {
  const c = {wa_id: $('waid').value.trim(), name: $('name').value.trim()};
  if ($('username').value.trim()) c.username = $('username').value.trim();
  return c;
}
function fmt(t, tz) {
  try {
    return new Intl.DateTimeFormat('en-GB', {timeZone: tz || zone, weekday: 'short', day: 'numeric', month: 'short',
      hour: '2-digit', minute: '2-digit', timeZoneName: 'short'}).format(new Date(t));
  } catch (e) {
    return new Date(t).toISOString().replace('T', ' ').slice(0, 16) + ' UTC';
  }
}
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function list(ul, items) {
  ul.textContent = '';
  if (!items.length) { ul.append(el('li', '', 'none')); return; }
  for (const t of items) ul.append(el('li', '', t));
}

function render(state) {
  const tz = state.contact ? state.contact.zone : zone;
  const ahead = Math.round(state.offset_seconds / 3600);
  $('clock').textContent = fmt(state.now, tz) + (ahead ? '  (' + (ahead >= 24 ? Math.floor(ahead / 24) + 'd' : '') + (ahead % 24 ? ahead % 24 + 'h' : '') + ' ahead of real time)' : '');
  $('title').textContent = $('name').value || $('waid').value;
  list($('schedules'), (state.schedules || []).map((s) => s.text));
  const c = state.contact;
  if (!c) return;
  const w = $('window');
  w.textContent = c.window.state;
  w.className = 'badge ' + c.window.state;
  const cs = $('consent');
  cs.textContent = {in: 'opted in', out: 'opted out', unknown: 'consent not asked'}[c.consent.state] || c.consent.state;
  cs.className = 'badge ' + c.consent.state;
  $('zone-text').textContent = c.zone + (c.timezone ? '' : ' (the daemon\'s: the contact has none)');
  $('window-text').textContent = c.window.text;
  $('consent-text').textContent = c.consent.text;
  list($('runs'), c.runs.map((r) => r.flow + ' ' + (r.next ? 'at ' + r.step + ': ' + r.next.text : r.text)));
  $('next').textContent = c.next ? c.next.text : 'nothing scheduled for this contact';
  if (document.activeElement !== $('tz')) $('tz').value = c.timezone || '';

  // The chat is rebuilt only when it changed: a poll must not replace the
  // button under the pointer.
  const key = JSON.stringify([state.messages, tz]);
  if (key === lastChat) return;
  lastChat = key;
  const chat = $('chat');
  const atBottom = chat.scrollHeight - chat.scrollTop - chat.clientHeight < 40;
  chat.textContent = '';
  for (const m of state.messages) {
    const d = el('div', 'msg ' + m.direction);
    d.dataset.status = m.status || '';
    d.dataset.template = m.template || '';
    d.dataset.window = m.window || '';
    d.dataset.type = m.type || '';
    if (m.template) d.classList.add('template');
    if (m.status && m.status !== 'sent') d.classList.add('refused');
    if (m.direction === 'system' && m.type === 'refused') d.classList.add('refused');
    if (m.headline) d.append(el('div', 'ad', 'from the ad “' + m.headline + '”'));
    const text = el('div', 'text');
    if (m.template) text.append(el('span', 'chip' + (m.fallback ? ' fallback' : ''), m.fallback ? 'FALLBACK TEMPLATE' : 'TEMPLATE'));
    text.append(document.createTextNode(m.text || '(' + m.type + ')'));
    d.append(text);
    if (m.reason) d.append(el('div', 'reason', (m.status === 'sent' ? '' : '✕ ') + m.reason));
    if (m.choices && m.direction === 'out' && m.status === 'sent') {
      const cs = el('div', 'choices');
      for (const ch of m.choices) {
        const b = el('button', 'choice', ch.title);
        b.onclick = () => act(() => api('inbound', {...contact(), choice: ch, delay_seconds: delay()}));
        cs.append(b);
      }
      d.append(cs);
    }
    if (m.link && m.direction === 'out' && m.status === 'sent') {
      // A call-to-action button opens its address and sends nothing back.
      const a = el('a', 'choice link', m.link.title + ' ↗');
      a.href = /^https?:\/\//i.test(m.link.url) ? m.link.url : '#';
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      a.title = m.link.url;
      const cs = el('div', 'choices');
      cs.append(a);
      d.append(cs);
    }
    if (m.form && m.direction === 'out' && m.status === 'sent') d.append(formFor(m.form));
    let info = fmt(m.at, tz);
    if (m.direction === 'out') {
      info += ' · ' + m.flow + '/' + m.step;
      if (m.template) info += ' · template ' + m.template;
      if (m.window) info += ' · window ' + m.window + ' when sent (' + m.allowed + (m.allowed === 'free-form' ? ' allowed' : '') + ')';
    }
    if (m.late) info += ' · ' + m.late;
    if (m.direction !== 'system') d.append(el('div', 'meta', info));
    chat.append(d);
  }
  if (atBottom || busy) chat.scrollTop = chat.scrollHeight;
}

// formFor lets the contact answer a form message (its fields from the Flow
// JSON, or a JSON object when the flow names none) or a location request.
function formFor(f) {
  const box = el('form', 'fill');
  const inputs = [];
  const field = (name, type, label) => {
    const row = el('label', '', (label || name) + ' ');
    const input = el('input');
    input.name = name;
    input.type = type === 'boolean' ? 'checkbox' : type === 'number' ? 'number' : 'text';
    if (type === 'number') input.step = 'any';
    if (type === 'list') input.placeholder = 'comma-separated';
    row.append(input);
    box.append(row);
    inputs.push([input, type]);
  };
  let raw = null;
  if (f.kind === 'location') {
    field('latitude', 'number', 'Latitude');
    field('longitude', 'number', 'Longitude');
    field('name', 'string', 'Place');
    field('address', 'string', 'Address');
  } else if (f.fields && f.fields.length) {
    for (const x of f.fields) if (x.input) field(x.name, x.type, x.label);
  } else {
    raw = el('textarea');
    raw.placeholder = '{"name": "Ana"} (the form\'s fields: the flow names no Flow JSON)';
    box.append(raw);
  }
  const submit = el('button', 'choice', f.kind === 'location' ? 'Send location' : f.cta);
  submit.type = 'submit';
  box.append(submit);
  box.onsubmit = (e) => {
    e.preventDefault();
    const values = {};
    for (const [input, type] of inputs) {
      if (type === 'boolean') values[input.name] = input.checked;
      else if (type === 'number') { if (input.value !== '') values[input.name] = Number(input.value); }
      else if (type === 'list') values[input.name] = input.value.split(',').map((v) => v.trim()).filter((v) => v);
      else if (input.value !== '') values[input.name] = input.value;
    }
    if (f.kind === 'form') {
      // The Flow's constants come back as they are written in its JSON.
      for (const x of f.fields || []) if (!x.input && x.value !== undefined) values[x.name] = x.value;
    }
    let body;
    if (f.kind === 'location') {
      if (values.latitude === undefined || values.longitude === undefined) { notice('A location needs a latitude and a longitude.'); return; }
      body = {location: values};
    } else if (raw) {
      try {
        body = {form: JSON.parse(raw.value || '{}')};
        if (body.form === null || typeof body.form !== 'object' || Array.isArray(body.form)) throw new Error('not an object');
      } catch (err) { notice('The form must be a JSON object: ' + err.message); return; }
    } else {
      body = {form: values};
    }
    act(() => api('inbound', {...contact(), ...body, delay_seconds: delay()}));
  };
  return box;
}

function delay() {
  const v = parseInt($('delay').value, 10) || 0;
  $('delay').value = '0';
  return v;
}

async function act(fn) {
  if (busy) return;
  busy = true;
  epoch++;
  document.body.classList.add('busy');
  try {
    render(await fn());
    notice('');
    graph();
  } catch (e) {
    notice(e.message);
  } finally {
    busy = false;
    document.body.classList.remove('busy');
  }
}
async function refresh() {
  if (busy) return;
  const at = epoch;
  try {
    const state = await api('state?wa_id=' + encodeURIComponent(contact().wa_id));
    // An action started while this poll was out: its answer is newer.
    if (!busy && at === epoch) render(state);
  } catch (e) { /* next tick */ }
}
async function graph() {
  try {
    const q = 'graph?wa_id=' + encodeURIComponent(contact().wa_id) + '&flow=' + encodeURIComponent($('graph-flow').value);
    const g = await api(q);
    // The server escapes every text of the SVG it draws.
    $('graph').innerHTML = g.svg;
    $('graph').dataset.flow = g.flow;
  } catch (e) { $('graph').textContent = e.message; }
}

$('send').onclick = () => {
  const text = $('text').value.trim();
  if (!text) return;
  $('text').value = '';
  act(() => api('inbound', {...contact(), text, delay_seconds: delay()}));
};
$('text').addEventListener('keydown', (e) => { if (e.key === 'Enter') $('send').click(); });
$('arrive').onclick = () => {
  const ref = {source_id: $('ad-select').value, headline: $('headline').value, source_url: 'https://fb.me/sandbox'};
  act(() => api('inbound', {...contact(), text: $('prefilled').value, referral: ref, delay_seconds: delay()}));
};
for (const b of document.querySelectorAll('[data-d]')) {
  b.onclick = () => act(() => api('advance', {duration: b.dataset.d, wa_id: contact().wa_id}));
}
$('ff-go').onclick = () => {
  const d = $('ff-custom').value.trim();
  if (d) act(() => api('advance', {duration: d, wa_id: contact().wa_id}));
};
$('set-tz').onclick = () => act(() => api('contact', {wa_id: contact().wa_id, timezone: $('tz').value.trim()}));
$('fire-event').onclick = () => {
  let payload;
  try {
    payload = JSON.parse($('event-payload').value || '{}');
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) throw new Error('not an object');
  } catch (e) {
    notice('The event payload must be a JSON object: ' + e.message);
    return;
  }
  act(() => api('event', {wa_id: contact().wa_id, name: $('event-name').value, payload}));
};
let armed = null;
$('reset').onclick = () => {
  const b = $('reset');
  if (!b.classList.contains('armed')) {
    b.classList.add('armed');
    b.textContent = 'Click again: erase everything';
    armed = setTimeout(() => { b.classList.remove('armed'); b.textContent = 'Reset the sandbox'; }, 5000);
    return;
  }
  clearTimeout(armed);
  b.classList.remove('armed');
  b.textContent = 'Reset the sandbox';
  act(() => api('reset', {wa_id: contact().wa_id}));
};
$('waid').addEventListener('change', () => { refresh(); graph(); });
$('graph-flow').addEventListener('change', graph);

api('config').then((cfg) => {
  zone = cfg.zone || 'UTC';
  $('db-note').textContent = cfg.db.temporary
    ? 'Database: ' + cfg.db.path + ' — a fresh temporary one, removed when the daemon stops (start with --db FILE to keep it).'
    : 'Database: ' + cfg.db.path + '.';
  const sel = $('ad-select');
  for (const a of cfg.ads) {
    const o = el('option', '', (a.description || a.flow) + (a.source_id ? ' — ad ' + a.source_id : ' — any ad'));
    o.value = a.source_id;
    sel.append(o);
  }
  for (const k of cfg.keywords) {
    const b = el('button', 'secondary', k);
    b.onclick = () => act(() => api('inbound', {...contact(), text: k, delay_seconds: delay()}));
    $('keywords').append(b);
  }
  if (!cfg.keywords.length) $('keywords').append(el('span', 'hint', 'no keyword flows'));
  for (const e of cfg.events) $('event-name').append(el('option', '', e));
  if (!cfg.events.length) { $('event-name').append(el('option', '', 'no event flows')); $('fire-event').disabled = true; }
  for (const f of cfg.flows) {
    const o = el('option', '', f.id + ' (' + f.trigger + ')');
    o.value = f.id;
    $('graph-flow').append(o);
  }
  refresh();
  graph();
}).catch((e) => notice(e.message));
setInterval(refresh, 2000);
