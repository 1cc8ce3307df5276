// The console's end-to-end scenario in a real browser, run by
// integration/console_test.go against the real cmon binary and real sshd
// nodes. It exits non-zero with the step that failed.
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const url = env('CMON_URL');
const password = env('CMON_PASSWORD');
const viewerPassword = env('VIEWER_PASSWORD');
const cluster = env('CLUSTER_NAME');
const nodes = env('NODES').split(',');
const hostname = env('NODE_HOSTNAME');
const shots = process.env.SCREENSHOTS;
const timeout = 60_000;

let step = 'start';
const browser = await chromium.launch({ executablePath: env('CHROMIUM'), args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  page.setDefaultTimeout(timeout);
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // shot checks the page shows no rendering slip, then keeps a screenshot.
  const shot = async (name) => {
    const text = await page.locator('main').innerText();
    const slip = text.match(/\[object \w+\]|\bnull\b|\bundefined\b|\bNaN\b/);
    if (slip) throw new Error(`the ${name} page shows "${slip[0]}"`);
    if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  };
  const expectText = async (locator, text) => {
    await locator.filter({ hasText: text }).first().waitFor();
  };

  step = 'a wrong password is refused plainly';
  await page.goto(url);
  await page.getByLabel('User name').fill('admin');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Log in' }).click();
  await expectText(page.getByRole('alert'), 'AccessDenied: Username or password is incorrect.');
  await shot('login');

  step = 'log in';
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Signed in as admin').waitFor();

  step = 'see the registered cluster and its hosts';
  await page.getByRole('link', { name: cluster, exact: true }).waitFor();
  for (const n of nodes) await page.getByText(`${n}:`, { exact: false }).first().waitFor();
  await shot('clusters');
  await page.setViewportSize({ width: 390, height: 844 });
  await shot('clusters-phone');
  await page.setViewportSize({ width: 1280, height: 860 });

  step = 'open the cluster';
  await page.getByRole('link', { name: cluster, exact: true }).click();
  await page.getByRole('heading', { name: `Cluster ${cluster}` }).waitFor();
  await expectText(page.locator('dd'), 'rwx');
  await shot('cluster');

  step = 'a maintenance period on a host, added and removed';
  await page.getByLabel('Host', { exact: true }).selectOption(nodes[1]);
  await page.getByLabel('Until').fill('2099-01-01T10:00');
  await page.getByLabel('Reason').fill('disk swap');
  await page.getByRole('button', { name: 'Add maintenance' }).click();
  await page.getByRole('cell', { name: 'disk swap', exact: true }).waitFor();
  await page.getByRole('button', { name: /^Remove maintenance of/ }).click();
  await page.getByRole('cell', { name: 'disk swap', exact: true }).waitFor({ state: 'detached' });

  step = 'run hostname on every node';
  await page.getByRole('link', { name: 'Run a command' }).first().click();
  await page.getByLabel('Command').fill('hostname');
  await shot('run');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('heading', { name: /^Job \d+: hostname/ }).waitFor();
  await page.locator('h1 .badge', { hasText: 'FINISHED' }).waitFor();
  for (const n of nodes) {
    await page.locator(`section[data-node="${n}"] pre`, { hasText: hostname }).waitFor();
  }
  await shot('job');

  step = 'schedule a command with cron';
  await page.getByRole('link', { name: 'Run a command' }).click();
  await page.getByLabel('Command').fill('uptime');
  await page.getByLabel('Title').fill('half-hourly uptime');
  await page.getByLabel('Schedule (cron, empty: now)').fill('*/30 * * * *');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('heading', { name: /^Job \d+: half-hourly uptime/ }).waitFor();
  await page.locator('h1 .badge', { hasText: 'scheduled' }).waitFor();
  await expectText(page.locator('dd'), '*/30 * * * * UTC');
  await page.getByRole('button', { name: 'Kill' }).click();
  await page.locator('h1 .badge', { hasText: 'aborted' }).waitFor();

  step = 'watch a long job\'s log grow';
  await page.getByRole('link', { name: 'Run a command' }).click();
  await page.getByLabel('Command').fill('for i in $(seq 1 120); do echo tick-$i; sleep 1; done');
  await page.getByLabel('Title').fill('ticker');
  await page.getByRole('button', { name: 'Run' }).click();
  await page.getByRole('heading', { name: /^Job \d+: ticker/ }).waitFor();
  const ticks = page.locator('ol.log li', { hasText: 'tick-' });
  await ticks.nth(1).waitFor();
  const seen = await ticks.count();
  await ticks.nth(seen + 1).waitFor(); // more lines arrive without a reload
  await page.locator(`section[data-node="${nodes[0]}"] pre`, { hasText: 'tick-' }).waitFor();
  await shot('job-running');

  step = 'kill it';
  await page.getByRole('button', { name: 'Kill' }).click();
  await page.locator('h1 .badge', { hasText: 'ABORTED' }).waitFor();
  await expectText(page.getByRole('status'), 'Job was aborted by user admin.');
  await expectText(page.locator('dd'), 'signal TERM');
  if (await page.getByRole('button', { name: 'Kill' }).count()) throw new Error('an aborted job still offers Kill');

  step = 'the jobs page lists both';
  await page.getByRole('link', { name: 'Jobs', exact: true }).click();
  await page.getByRole('cell', { name: 'ticker' }).first().waitFor();
  await page.getByLabel('State').selectOption('aborted');
  await page.getByRole('cell', { name: 'ticker' }).waitFor();
  await shot('jobs');

  step = 'alarms';
  await page.getByRole('link', { name: 'Alarms' }).click();
  await page.getByRole('heading', { name: 'Alarms' }).waitFor();
  await shot('alarms');

  step = 'log out';
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Log in' }).waitFor();
  await page.goto(`${url}/#/clusters`);
  await page.getByRole('button', { name: 'Log in' }).waitFor();

  step = 'a reader is offered no buttons it may not use';
  await page.getByLabel('User name').fill('viewer');
  await page.getByLabel('Password').fill(viewerPassword);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByText('Signed in as viewer').waitFor();
  await page.getByRole('link', { name: cluster, exact: true }).click();
  await page.getByRole('heading', { name: `Cluster ${cluster}` }).waitFor();
  await page.getByRole('link', { name: 'All jobs' }).waitFor();
  if (await page.getByRole('link', { name: 'Run a command', exact: true }).locator('xpath=ancestor::main').count()) {
    throw new Error('a reader is offered Run a command');
  }
  if (await page.getByRole('button', { name: 'Add maintenance' }).count()) throw new Error('a reader is offered maintenance');
  await page.getByRole('row', { name: /ticker/ }).getByRole('link').first().click();
  await page.getByRole('heading', { name: /^Job \d+: ticker/ }).waitFor();
  for (const b of ['Kill', 'Clone', 'Delete']) {
    if (await page.getByRole('button', { name: b }).count()) throw new Error(`a reader is offered ${b}`);
  }
  await page.getByRole('link', { name: 'Run a command' }).click();
  await page.getByText('You may run commands on no cluster.').waitFor();

  step = 'a refusal from the server is shown as it comes';
  await page.goto(`${url}/#/cluster/999`);
  await expectText(page.getByRole('alert'), 'AccessDenied: Read access to cluster 999 for user viewer is denied.');

  if (errors.length) throw new Error(`script errors in the page: ${errors.join('; ')}`);
  console.log('console e2e: ok');
} catch (e) {
  console.error(`console e2e failed at "${step}": ${e.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
