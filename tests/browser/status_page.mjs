// Headless Chromium against a running `dwmon serve` (started by dwmon/tests/browser.rs):
//   node status_page.mjs URL READ_TOKEN WRITE_TOKEN SCREENSHOT_DIR
// Checks: a checker turns BAD on the overview within 35 s of its check being recorded;
// pausing from the page works with a write session and is refused with a read one; hostile
// text in __EXTRA__, queries, pause comments and ping bodies never runs script; screenshots
// at 1280 and 360 px show the expected text. Exits non-zero with the reason on the first
// failure.
import { chromium } from "playwright-core";

const [url, readToken, writeToken, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.DWMON_CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (message) => {
  console.error(`FAIL: ${message}`);
  await browser.close();
  process.exit(1);
};
const executed = [];
async function session(token, width) {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  // Any script a payload smuggled in would call alert(); any CSP violation is reported too.
  page.on("dialog", async (d) => { executed.push(`dialog: ${d.message()}`); await d.dismiss(); });
  page.on("console", (m) => { if (/Content Security Policy/i.test(m.text())) executed.push(`csp: ${m.text()}`); });
  await page.goto(url + "/");
  await page.fill("input[name=token]", token);
  await Promise.all([page.waitForNavigation(), page.click("button")]);
  return { context, page };
}

try {
  // 1. BAD within 35 s of the check being recorded (the clock runs at 20x: a minute every 3 s).
  const { context: writer, page } = await session(writeToken, 1280);
  const recordedBy = Date.now();
  try {
    await page.waitForSelector("tr.b >> text=events", { timeout: 35000 });
  } catch (e) {
    await fail(`events did not turn BAD within 35 s: ${(await page.textContent("main")).slice(0, 400)}`);
  }
  console.log(`BAD shown ${((Date.now() - recordedBy) / 1000).toFixed(1)} s after the page opened`);
  if (!(await page.textContent("header")).includes("write access")) await fail("no write session");

  // 2. Screenshots at 1280 and 360 px with the expected text.
  await page.screenshot({ path: `${shots}/status-1280.png`, fullPage: true });
  const text = await page.textContent("body");
  for (const expected of ["events", "hostile", "BAD", "last 90 checks", "MIN..MAX"]) {
    if (!text.includes(expected)) await fail(`1280 px: no ${expected}`);
  }
  const { context: narrow, page: small } = await session(readToken, 360);
  await small.screenshot({ path: `${shots}/status-360.png`, fullPage: true });
  const smallText = await small.textContent("body");
  for (const expected of ["events", "hostile", "state"]) {
    if (!smallText.includes(expected)) await fail(`360 px: no ${expected}`);
  }
  const overflow = await small.evaluate(() => document.querySelector("header").scrollWidth > 360);
  if (overflow) await fail("360 px: the header is wider than the screen");

  // 3. Hostile text is shown as text.
  await page.goto(url + "/checkers/hostile");
  await page.click("summary");
  const details = await page.textContent("details");
  if (!details.includes("<script>alert('extra')</script>")) await fail(`the extra is not shown as text: ${details}`);
  if (await page.$("img")) await fail("an <img> from a payload is in the DOM");

  // ... and so is a push checker's ping body.
  await page.goto(url + "/checkers/job");
  const pings = await page.textContent("table.pings");
  if (!pings.includes("done <script>alert('ping')</script> \"><img src=x onerror=alert('ping2')>")) {
    await fail(`the ping body is not shown as text: ${pings}`);
  }
  if (await page.$("img")) await fail("an <img> from a ping body is in the DOM");

  // 4. Pause: refused for the read session (no button; a forged post gets 403) ...
  await small.goto(url + "/checkers/events");
  if (await small.$("text=Pause")) {
    if (await small.$("button:has-text('Pause')")) await fail("a read session sees the Pause button");
  }
  const refused = await small.evaluate(async () => (await fetch("/checkers/events/pause", { method: "POST", body: new URLSearchParams({ comment: "x" }) })).status);
  if (refused !== 403) await fail(`a read session's pause answered ${refused}`);
  // ... and works for the write session, with a hostile comment shown as text.
  await page.goto(url + "/checkers/events");
  await page.fill("input[name=comment]", "<img src=x onerror=alert('comment')> maintenance");
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Pause')")]);
  const paused = await page.textContent("body");
  if (!paused.includes("Paused since") || !paused.includes("<img src=x onerror=alert('comment')> maintenance")) {
    await fail(`the pause is not shown: ${paused.slice(0, 400)}`);
  }
  if (await page.$("img")) await fail("the pause comment became an element");
  await page.goto(url + "/");
  if (!(await page.$("tr.p >> text=events"))) await fail("the overview does not show events PAUSED");
  await Promise.all([page.waitForNavigation(), page.goto(url + "/checkers/events")]);
  await Promise.all([page.waitForNavigation(), page.click("button:has-text('Unpause')")]);
  if ((await page.textContent("body")).includes("Paused since")) await fail("unpause did not lift the pause");

  if (executed.length) await fail(`script ran or CSP fired: ${executed.join("; ")}`);
  await writer.close();
  await narrow.close();
  await browser.close();
  console.log("browser checks passed");
} catch (e) {
  await fail(e.stack || String(e));
}
