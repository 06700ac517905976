// Drives the federation console in headless Chromium for
// e2e/tests/console.rs. The Rust test owns the federation; this script only
// uses the browser, and talks to the test over stdin/stdout lines:
//   stdout "STEP <name>"        progress
//   stdout "STOP <cluster>"     asks the test to stop that cluster's gateway
//   stdin  "STOPPED"            the gateway is stopped
//   stdout "STALE <ms>"         the map showed it stale after <ms>, no reload
//   stdout "DENIAL <json>"      the residency denial row
//   stdout "EXPLANATION <json>" the explanation the console showed
//   stdout "DONE"
// Any failure prints "FAIL <message>" and exits 1. Screenshots go to SHOT_DIR.
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";
import { mkdirSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  if (!v) { throw new Error(`${k} is not set`); }
  return v;
};
const base = env("CONSOLE_BASE");
const token = env("CONSOLE_TOKEN");
const shots = env("SHOT_DIR");
const clusters = env("CLUSTERS").split(",");
const stopCluster = env("STOP_CLUSTER");
const staleTimeout = Number(env("STALE_TIMEOUT_MS"));
const deniedService = env("DENIED_SERVICE");
const explainCluster = env("EXPLAIN_CLUSTER");
const explainHost = env("EXPLAIN_HOST");
const explainHeaders = process.env.EXPLAIN_HEADERS || "";
mkdirSync(shots, { recursive: true });

const lines = createInterface({ input: process.stdin });
const waiting = [];
lines.on("line", (l) => { const w = waiting.shift(); if (w) { w(l.trim()); } });
const nextLine = () => new Promise((resolve) => waiting.push(resolve));
const say = (s) => process.stdout.write(s + "\n");

const browser = await chromium.launch({
  executablePath: env("CHROMIUM"),
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
// Never outlive the test.
const watchdog = setTimeout(async () => { say("FAIL watchdog: 240s"); await browser.close(); process.exit(1); }, 240000);

try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const shot = (name) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

  // Sign in through the URL fragment, as local-federation.sh prints it.
  say("STEP sign-in");
  await page.goto(`${base}/ui/#token=${encodeURIComponent(token)}`);
  await page.waitForURL(/\/ui\/map$/, { timeout: 15000 });

  say("STEP map");
  for (const c of clusters) {
    await page.locator(`[data-cluster="${c}"] [data-status="connected"]`).waitFor({ timeout: 20000 });
    // Its gateway runs the newest catalog (from the gateway's own metrics).
    await page.locator(`[data-cluster="${c}"] [data-catalog="current"]`).waitFor({ timeout: 20000 });
  }
  await page.locator("#live", { hasText: "live" }).waitFor({ timeout: 10000 });
  await shot("map");

  // Stop a gateway; the open page must turn it stale by itself.
  say(`STOP ${stopCluster}`);
  if ((await nextLine()) !== "STOPPED") { throw new Error("the test did not stop the gateway"); }
  const t0 = Date.now();
  await page.locator(`[data-cluster="${stopCluster}"] [data-status="stale"]`).waitFor({ timeout: staleTimeout });
  say(`STALE ${Date.now() - t0}`);
  await shot("map-stale");

  // Keyboard navigation: 2..5 switch views.
  say("STEP traffic");
  await page.locator("body").press("2");
  await page.waitForURL(/\/ui\/traffic$/);
  await page.locator("tr[data-edge]").first().waitFor({ timeout: 20000 });
  await shot("traffic");

  say("STEP services");
  await page.locator("body").press("3");
  await page.waitForURL(/\/ui\/services$/);
  await page.locator("[data-service]").first().waitFor({ timeout: 10000 });
  await shot("services");

  say("STEP residency");
  await page.locator("body").press("4");
  await page.waitForURL(/\/ui\/residency$/);
  const row = page.locator(`tr[data-denial="${deniedService}"]`).first();
  await row.waitFor({ timeout: 20000 });
  const cells = await row.locator("td").allInnerTexts();
  say(`DENIAL ${JSON.stringify(cells)}`);
  await shot("residency");

  say("STEP explain");
  await page.selectOption("#x-cluster", explainCluster);
  await page.fill("#x-host", explainHost);
  await page.fill("#x-headers", explainHeaders);
  await page.locator("form.explain button[type=submit]").click();
  await page.locator("#explanation-json").waitFor({ timeout: 15000 });
  const json = await page.locator("#explanation-json").innerText();
  say(`EXPLANATION ${JSON.stringify(JSON.parse(json))}`);
  await page.locator("#explanation").scrollIntoViewIfNeeded();
  await shot("residency-explain");

  say("STEP trust");
  await page.locator("body").press("5");
  await page.waitForURL(/\/ui\/trust$/);
  await page.locator("tr[data-trust-domain]").first().waitFor({ timeout: 10000 });
  await shot("trust");
  say("DONE");
} catch (e) {
  say(`FAIL ${String(e && e.message || e).split("\n")[0]}`);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  lines.close();
  await browser.close();
}
