// The cmon console: a page per hash route, each built from public RPC v2
// operations only. Buttons a user may not use are left out (from the
// cluster's effective_privileges); a refusal from the server is shown as it
// comes anyway.
import { rpc, may, activeStatuses } from './api.js';
import { h, fill, table, badge, when, field } from './dom.js';

const main = document.getElementById('main');
const errorBox = document.getElementById('error');
const top = document.getElementById('top');
let me = null; // the signed-in user, null before login
let timers = []; // the current page's refreshes
let page = 0; // bumped on every navigation: late answers for an old page are dropped

function every(ms, fn) {
  const mine = page;
  timers.push(setInterval(() => { if (mine === page) fn().catch(showError); }, ms));
}

function showError(e) {
  if (e && e.status === 'AuthRequired') {
    me = null;
    route();
    return;
  }
  errorBox.textContent = e && e.status && e.status !== 'UnknownError' ? `${e.status}: ${e.message}` : String(e.message || e);
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = '';
}

// mount shows a page's content, unless the user has moved on meanwhile.
function mount(mine, ...children) {
  if (mine !== page) return false;
  fill(main, ...children);
  return true;
}

// act runs a button's action, with the button disabled meanwhile.
function act(fn) {
  return async (ev) => {
    const b = ev.currentTarget;
    b.disabled = true;
    clearError();
    try { await fn(ev); } catch (e) { showError(e); } finally { b.disabled = false; }
  };
}

async function route() {
  timers.forEach(clearInterval);
  timers = [];
  const mine = ++page;
  clearError();
  if (!me) {
    try {
      me = (await rpc('users', 'whoAmI')).user;
    } catch (e) {
      if (e.status !== 'AuthRequired') showError(e);
    }
  }
  if (mine !== page) return;
  if (!me) {
    top.hidden = true;
    loginPage(mine);
    return;
  }
  top.hidden = false;
  document.getElementById('whoami').textContent = `Signed in as ${me.user_name}`;
  const [path, query] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...args] = path.split('/').filter(Boolean);
  const view = pages[name] || pages.clusters;
  for (const a of document.querySelectorAll('nav a')) {
    if (a.getAttribute('href') === `#/${name || 'clusters'}`) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  try {
    await view(mine, args, new URLSearchParams(query || ''));
  } catch (e) {
    showError(e);
  }
  if (mine === page) main.focus({ preventScroll: true });
}

function loginPage(mine) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'login', onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      me = (await rpc('auth', 'authenticateWithPassword', { user_name: user.value, password: password.value })).user;
      password.value = '';
      if (!location.hash || location.hash === '#/login') location.hash = '#/clusters';
      else route();
    } catch (e) {
      showError(e); // the server's own words: they never tell which of the two was wrong
    }
  } },
  h('h1', {}, 'Log in to cmon'),
  field('User name', user), field('Password', password),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Log in')));
  mount(mine, form);
  user.focus();
}

document.getElementById('logout').addEventListener('click', act(async () => {
  try { await rpc('auth', 'logout'); } finally {
    me = null;
    location.hash = '#/login';
    route();
  }
}));

// clusterList is every cluster the user may read, by id.
async function clusterList(withHosts = false) {
  const r = await rpc('clusters', 'getAllClusterInfo', { with_hosts: withHosts });
  return r.clusters;
}

// nodesOf are a cluster's nodes: its hosts but the controller, which the
// reference lists among them.
function nodesOf(c) {
  return (c?.hosts || []).filter((x) => x.nodetype !== 'controller');
}

function hostList(hosts) {
  return h('ul', { class: 'plain' }, (hosts || []).map((x) => h('li', {},
    `${x.hostname}:${x.port} `, badge(x.hoststatus), h('span', { class: 'muted' }, ` seen ${when(x.lastseen)}`))));
}

async function clustersPage(mine) {
  const region = h('div');
  if (!mount(mine, h('h1', {}, 'Clusters'), region)) return;
  const load = async () => {
    const clusters = await clusterList(true);
    fill(region, table(['Cluster', 'Type', 'State', 'Hosts', 'Your privileges'], clusters.map((c) => [
      h('a', { href: `#/cluster/${c.cluster_id}` }, c.cluster_name), c.cluster_type, badge(c.state),
      hostList(nodesOf(c)), c.effective_privileges,
    ])));
  };
  await load();
  every(5000, load);
}

function jobRows(jobs, names = {}) {
  return jobs.map((j) => [
    h('a', { href: `#/job/${j.job_id}` }, String(j.job_id)), j.title, j.job_spec?.command || '',
    j.cluster_id ? h('a', { href: `#/cluster/${j.cluster_id}` }, names[j.cluster_id] || String(j.cluster_id)) : '—',
    badge(j.status), j.user_name, when(j.created),
  ]);
}
const jobHeaders = ['Job', 'Title', 'Command', 'Cluster', 'Status', 'User', 'Created'];

async function clusterPage(mine, [id]) {
  const c = (await rpc('clusters', 'getClusterInfo', { cluster_id: Number(id), with_hosts: true })).cluster;
  const priv = c.effective_privileges;
  const hostsRegion = h('div');
  const jobsRegion = h('div');
  const maintRegion = h('div');
  const renderHosts = (cl) => fill(hostsRegion, table(['Host', 'Port', 'Status', 'Last seen', 'Maintenance', 'Tags'],
    nodesOf(cl).map((x) => [x.hostname, String(x.port), badge(x.hoststatus), when(x.lastseen),
      x.maintenance_mode_active ? 'in maintenance' : '—', (x.tags || []).join(', ')])));
  const loadMaintenance = async () => {
    const r = await rpc('maintenance', 'getMaintenance', { cluster_id: c.cluster_id });
    const periods = r.maintenance_records.flatMap((rec) => rec.maintenance_periods);
    fill(maintRegion, table(['Host', 'From', 'Until', 'Reason', 'By', ''], periods.map((m) => [
      m.hostname || 'whole cluster', when(m.initiate), when(m.deadline), m.reason, m.username,
      may(priv, 'w') ? h('button', { type: 'button', class: 'danger', 'aria-label': `Remove maintenance of ${m.hostname || 'the cluster'}: ${m.reason}`,
        onclick: act(async () => { await rpc('maintenance', 'removeMaintenance', { UUID: m.UUID }); await loadMaintenance(); }) }, 'Remove') : '',
    ])));
  };
  const loadJobs = async () => {
    const r = await rpc('jobs', 'getJobInstances', { cluster_id: c.cluster_id, limit: 10 });
    fill(jobsRegion, table(jobHeaders, jobRows(r.jobs, { [c.cluster_id]: c.cluster_name })));
  };
  renderHosts(c);
  const links = [h('a', { href: `#/jobs?cluster=${c.cluster_id}` }, 'All jobs'), h('a', { href: `#/alarms?cluster=${c.cluster_id}` }, 'Alarms')];
  if (may(priv, 'x')) links.unshift(h('a', { href: `#/run?cluster=${c.cluster_id}` }, 'Run a command'));
  if (!mount(mine,
    h('h1', {}, `Cluster ${c.cluster_name} `, badge(c.state)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Type'), h('dd', {}, `${c.cluster_type} ${c.vendor || ''} ${c.version || ''}`),
      h('dt', {}, 'Status'), h('dd', {}, c.status_text || '—'),
      h('dt', {}, 'Tags'), h('dd', {}, (c.tags || []).join(', ') || '—'),
      h('dt', {}, 'Owner'), h('dd', {}, `${c.owner_user_name || ''} / ${c.owner_group_name || ''}`),
      h('dt', {}, 'Your privileges'), h('dd', {}, priv)),
    h('div', { class: 'actions' }, links),
    h('h2', {}, 'Hosts'), hostsRegion,
    h('h2', {}, 'Maintenance'), maintRegion, may(priv, 'w') ? maintenanceForm(c, loadMaintenance) : null,
    h('h2', {}, 'Recent jobs'), jobsRegion)) return;
  await Promise.all([loadJobs(), loadMaintenance()]);
  every(5000, async () => {
    renderHosts((await rpc('clusters', 'getClusterInfo', { cluster_id: c.cluster_id, with_hosts: true })).cluster);
    await loadJobs();
  });
}

function isoOf(local) {
  return local ? new Date(local).toISOString() : '';
}

function maintenanceForm(c, reload) {
  const host = h('select', {}, h('option', { value: '' }, 'Whole cluster'), nodesOf(c).map((x) => h('option', { value: x.hostname }, x.hostname)));
  const from = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local', required: true });
  const reason = h('input', { required: true, maxlength: 255 });
  return h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    try {
      await rpc('maintenance', 'addMaintenance', { cluster_id: c.cluster_id, hostname: host.value,
        initiate: isoOf(from.value), deadline: isoOf(until.value), reason: reason.value });
      reason.value = '';
      await reload();
    } catch (e) { showError(e); }
  } },
  h('div', { class: 'row' }, field('Host', host), field('From (empty: now)', from), field('Until', until), field('Reason', reason),
    h('div', {}, h('button', { type: 'submit' }, 'Add maintenance'))));
}

const stateFilters = {
  '': [], running: ['show_running'], defined: ['show_defined'], finished: ['show_finished'],
  failed: ['show_failed'], aborted: ['show_aborted'], scheduled: ['show_scheduled'],
};
const pageSize = 20;

async function jobsPage(mine, _args, params) {
  const clusters = await clusterList();
  const names = Object.fromEntries(clusters.map((c) => [c.cluster_id, c.cluster_name]));
  const cluster = params.get('cluster') || '';
  const state = params.get('state') || '';
  const offset = Math.max(0, Number(params.get('offset')) || 0);
  const go = (changes) => {
    const next = new URLSearchParams({ cluster, state, offset: String(offset), ...changes });
    for (const [k, v] of [...next]) if (!v || v === '0') next.delete(k);
    location.hash = `#/jobs?${next}`;
  };
  const clusterSelect = h('select', { onchange: (ev) => go({ cluster: ev.target.value, offset: '0' }) },
    h('option', { value: '' }, 'All clusters'), clusters.map((c) => h('option', { value: String(c.cluster_id), selected: String(c.cluster_id) === cluster }, c.cluster_name)));
  const stateSelect = h('select', { onchange: (ev) => go({ state: ev.target.value, offset: '0' }) },
    Object.keys(stateFilters).map((s) => h('option', { value: s, selected: s === state }, s ? s[0].toUpperCase() + s.slice(1) : 'Any state')));
  const region = h('div');
  const pager = h('div', { class: 'actions' });
  if (!mount(mine, h('h1', {}, 'Jobs'), h('div', { class: 'row' }, field('Cluster', clusterSelect), field('State', stateSelect)), region, pager)) return;
  const load = async () => {
    const q = { limit: pageSize, offset };
    if (cluster) q.cluster_id = Number(cluster);
    for (const f of stateFilters[state] || []) q[f] = true;
    const r = await rpc('jobs', 'getJobInstances', q);
    fill(region, table(jobHeaders, jobRows(r.jobs, names)));
    fill(pager,
      h('button', { type: 'button', disabled: offset === 0, onclick: () => go({ offset: String(Math.max(0, offset - pageSize)) }) }, 'Previous'),
      h('span', { class: 'muted' }, r.total ? `${offset + 1}–${offset + r.jobs.length} of ${r.total}` : 'No jobs'),
      h('button', { type: 'button', disabled: offset + pageSize >= r.total, onclick: () => go({ offset: String(offset + pageSize) }) }, 'Next'));
  };
  await load();
  every(5000, load);
}

// nodeOutput keeps each node's output lines from the job log ("host: line").
function splitByNode(messages, hosts) {
  const out = new Map(hosts.map((x) => [x, []]));
  for (const m of messages) {
    const i = m.message_text.indexOf(': ');
    const host = i > 0 ? m.message_text.slice(0, i) : '';
    if (out.has(host)) out.get(host).push(m.message_text.slice(i + 2));
  }
  return out;
}

async function jobPage(mine, [id]) {
  const jobID = Number(id);
  let job = (await rpc('jobs', 'getJobInstance', { job_id: jobID })).job;
  let priv = 'rwx'; // a job without a cluster is its owner's: the server decides
  let hostnames = [];
  let clusterName = String(job.cluster_id);
  if (job.cluster_id) {
    try {
      const c = (await rpc('clusters', 'getClusterInfo', { cluster_id: job.cluster_id, with_hosts: true })).cluster;
      priv = c.effective_privileges;
      hostnames = nodesOf(c).map((x) => x.hostname);
      clusterName = c.cluster_name;
    } catch (e) {
      priv = '';
    }
  }
  const messages = [];
  const head = h('div');
  const actions = h('div', { class: 'actions' });
  const nodes = h('div');
  const log = h('ol', { class: 'log', 'aria-label': 'Job log' });
  const renderHead = () => {
    fill(head,
      h('h1', {}, `Job ${job.job_id}: ${job.title} `, badge(job.status)),
      h('p', { role: 'status' }, job.status_text || ''),
      job.has_progress ? h('p', {}, h('label', { class: 'inline' }, 'Progress',
        h('progress', { max: 100, value: job.progress_percent || 0 }, `${job.progress_percent || 0}%`))) : null,
      h('dl', { class: 'facts' },
        h('dt', {}, 'Command'), h('dd', {}, job.job_spec?.command || ''),
        h('dt', {}, 'Cluster'), h('dd', {}, job.cluster_id ? h('a', { href: `#/cluster/${job.cluster_id}` }, clusterName) : '—'),
        h('dt', {}, 'User'), h('dd', {}, job.user_name),
        h('dt', {}, 'Created'), h('dd', {}, when(job.created)),
        h('dt', {}, 'Started'), h('dd', {}, when(job.started)),
        h('dt', {}, 'Ended'), h('dd', {}, when(job.ended)),
        job.recurrence ? [h('dt', {}, 'Recurrence'), h('dd', {}, `${job.recurrence} ${job.time_zone || 'UTC'}`)] : null,
        h('dt', {}, 'Exit code'), h('dd', {}, job.ended ? `${job.exit_code}${job.exit_signal ? ` (signal ${job.exit_signal})` : ''}` : '—')));
    const buttons = [];
    if (may(priv, 'x') && job.can_be_aborted) {
      buttons.push(h('button', { type: 'button', class: 'danger', onclick: act(async () => {
        job = (await rpc('jobs', 'killJobInstance', { job_id: jobID })).job;
        renderHead();
      }) }, 'Kill'));
    }
    if (may(priv, 'x')) {
      buttons.push(h('button', { type: 'button', onclick: act(async () => {
        const clone = (await rpc('jobs', 'cloneJobInstance', { job_id: jobID })).job;
        location.hash = `#/job/${clone.job_id}`;
      }) }, 'Clone'));
    }
    if (may(priv, 'x') && job.can_be_deleted) {
      buttons.push(h('button', { type: 'button', class: 'danger', onclick: act(async () => {
        if (!window.confirm(`Delete job ${jobID} and its log?`)) return;
        await rpc('jobs', 'deleteJobInstance', { job_id: jobID });
        location.hash = '#/jobs';
      }) }, 'Delete'));
    }
    fill(actions, ...buttons);
  };
  const renderNodes = () => {
    const results = new Map((job.result?.nodes || []).map((n) => [n.hostname, n]));
    const names = [...new Set([...hostnames, ...results.keys()])];
    const live = splitByNode(messages, names);
    fill(nodes, ...names.filter((n) => results.has(n) || live.get(n).length).map((n) => {
      const r = results.get(n);
      const state = r ? (r.error ? h('span', { class: 'badge bad' }, r.error) : h('span', { class: 'badge ok' }, 'exit status 0')) : h('span', { class: 'badge warn' }, 'running');
      const body = r ? [r.stdout ? h('pre', { 'aria-label': `${n} output` }, r.stdout) : null, r.stderr ? h('pre', { class: 'warn', 'aria-label': `${n} errors` }, r.stderr) : null]
        : [h('pre', { 'aria-label': `${n} output` }, live.get(n).join('\n'))];
      return h('section', { class: 'node', 'data-node': n }, h('h3', {}, n, state), body);
    }));
  };
  const fetchLog = async () => {
    const r = await rpc('jobs', 'getJobLog', { job_id: jobID, ascending: true, offset: messages.length, limit: 1000 });
    for (const m of r.messages) {
      messages.push(m);
      log.append(h('li', { class: m.message_status === 'JOB_FAILED' ? 'bad' : m.message_status === 'JOB_WARNING' ? 'warn' : '' },
        `${when(m.created)}  ${m.message_text}`));
    }
    job = r.job; // with its result once it has ended
    renderHead();
    renderNodes();
  };
  renderHead();
  if (!mount(mine, head, actions, h('h2', {}, 'Output by node'), nodes, h('h2', {}, 'Log'), log)) return;
  await fetchLog();
  every(1000, async () => {
    if (activeStatuses.has(job.status)) await fetchLog();
  });
}

async function runPage(mine, _args, params) {
  const clusters = (await clusterList(true)).filter((c) => may(c.effective_privileges, 'x'));
  if (!clusters.length) {
    mount(mine, h('h1', {}, 'Run a command'), h('p', {}, 'You may run commands on no cluster.'));
    return;
  }
  const pick = h('select', { required: true }, clusters.map((c) => h('option', { value: String(c.cluster_id), selected: String(c.cluster_id) === params.get('cluster') }, c.cluster_name)));
  const nodeBoxes = h('fieldset', {}, h('legend', {}, 'Nodes'));
  const tags = h('input', { placeholder: 'db, eu-west' });
  const tagOp = h('select', {}, h('option', { value: 'OR' }, 'any of the tags'), h('option', { value: 'AND' }, 'all of the tags'));
  const command = h('textarea', { rows: 4, required: true, spellcheck: 'false' });
  const timeout = h('input', { type: 'number', min: '1', step: '1', inputmode: 'numeric' });
  const concurrent = h('input', { type: 'checkbox' });
  const abort = h('input', { type: 'checkbox', checked: true });
  const cron = h('input', { placeholder: '*/15 * * * *' });
  const tz = h('input', { placeholder: 'UTC' });
  const title = h('input', { maxlength: 1024 });
  const showNodes = () => {
    const c = clusters.find((x) => String(x.cluster_id) === pick.value);
    fill(nodeBoxes, h('legend', {}, 'Nodes (none ticked: every node, or the tags below)'),
      nodesOf(c).map((x) => h('label', { class: 'inline' }, h('input', { type: 'checkbox', name: 'node', value: x.hostname }), x.hostname)));
  };
  pick.addEventListener('change', showNodes);
  showNodes();
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    clearError();
    const data = { command: command.value, execute_concurrently: concurrent.checked, abort_on_error: abort.checked };
    const nodes = [...nodeBoxes.querySelectorAll('input:checked')].map((x) => x.value);
    const tagList = tags.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (nodes.length) data.nodes = nodes;
    else if (tagList.length) data.host_tags = { operator: tagOp.value, tags: tagList };
    if (timeout.value) data.timeout_sec = Number(timeout.value);
    const job = { title: title.value || command.value.split('\n')[0].slice(0, 80), job_spec: { command: 'exec', job_data: data } };
    if (cron.value.trim()) {
      job.recurrence = cron.value.trim();
      if (tz.value.trim()) job.time_zone = tz.value.trim();
    }
    try {
      const r = await rpc('jobs', 'createJobInstance', { cluster_id: Number(pick.value), job });
      location.hash = `#/job/${r.job.job_id}`;
    } catch (e) { showError(e); }
  } },
  h('h1', {}, 'Run a command'),
  field('Cluster', pick), nodeBoxes,
  h('div', { class: 'row' }, field('Host tags (comma separated)', tags), field('Match', tagOp)),
  field('Command', command),
  h('div', { class: 'row' }, field('Timeout per node (seconds)', timeout), field('Title', title)),
  h('p', {}, h('label', { class: 'inline' }, concurrent, 'Run on all nodes at once'),
    h('label', { class: 'inline' }, abort, 'Stop at the first failing node')),
  h('div', { class: 'row' }, field('Schedule (cron, empty: now)', cron), field('Time zone', tz)),
  h('div', { class: 'actions' }, h('button', { class: 'primary', type: 'submit' }, 'Run')));
  mount(mine, form);
}

async function alarmsPage(mine, _args, params) {
  const clusters = await clusterList();
  const byID = Object.fromEntries(clusters.map((c) => [c.cluster_id, c]));
  const only = params.get('cluster');
  const region = h('div');
  if (!mount(mine, h('h1', {}, 'Alarms'), region)) return;
  const load = async () => {
    const r = await rpc('alarm', 'getAlarms', only ? { cluster_id: Number(only) } : {});
    const groups = new Map();
    for (const a of r.alarms) {
      if (!groups.has(a.cluster_id)) groups.set(a.cluster_id, []);
      groups.get(a.cluster_id).push(a);
    }
    if (!groups.size) {
      fill(region, h('p', {}, 'No open alarms.'));
      return;
    }
    fill(region, ...[...groups].map(([id, list]) => h('section', {},
      h('h2', {}, h('a', { href: `#/cluster/${id}` }, byID[id]?.cluster_name || `Cluster ${id}`)),
      table(['Severity', 'Host', 'Alarm', 'Count', 'First seen', 'Last seen', ''], list.map((a) => [
        badge(a.severity_name), a.hostname || '—', h('div', {}, h('strong', {}, a.title), h('div', { class: 'muted' }, a.message)),
        String(a.counter), when(a.created), when(a.reported),
        may(byID[id]?.effective_privileges, 'w') ? h('button', { type: 'button', 'aria-label': `Ignore alarm: ${a.title}`,
          onclick: act(async () => { await rpc('alarm', 'ignoreAlarm', { alarm_id: a.alarm_id, ignore: true }); await load(); }) }, 'Ignore') : '',
      ])))));
  };
  await load();
  every(10000, load);
}

const pages = { clusters: clustersPage, cluster: clusterPage, jobs: jobsPage, job: jobPage, run: runPage, alarms: alarmsPage, login: clustersPage };

window.addEventListener('hashchange', route);
route();
