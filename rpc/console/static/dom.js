// Small DOM helpers: every text goes in as text, never as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

// fill replaces el's children; arrays are flattened, null and false left out.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function table(headers, rows, caption) {
  return h('div', { class: 'table' },
    h('table', {}, caption ? h('caption', { class: 'muted' }, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))
        : h('tr', {}, h('td', { colspan: headers.length, class: 'muted' }, 'Nothing to show.')))));
}

const statusClass = {
  FINISHED: 'ok', STARTED: 'ok', CmonHostOnline: 'ok', RUNNING: 'warn', DEQUEUED: 'warn', DEFINED: 'muted',
  SCHEDULED: 'muted', PAUSED: 'muted', DEGRADED: 'warn', FAILED: 'bad', ABORTED: 'bad', FAILURE: 'bad',
  CmonHostOffLine: 'bad', ALARM_CRITICAL: 'bad', ALARM_WARNING: 'warn',
};

// badge shows a status; host statuses read as "online", "offline".
export const badge = (text) => h('span', { class: `badge ${statusClass[text] || ''}` },
  String(text ?? '').replace(/^CmonHost/, '').replace(/^ALARM_/, '').toLowerCase());

export function when(value) {
  if (!value) return '—';
  const d = typeof value === 'number' ? new Date(value * 1000) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

export function field(label, input) {
  const id = input.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  input.id = id;
  return h('div', {}, h('label', { for: id }, label), input);
}
