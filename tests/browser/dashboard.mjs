// Drives the queue dashboard in headless Chromium as an administrator, at 1280 px wide. Exits
// non-zero, with the reason, on any failure. Environment: BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD,
// CHROMIUM (default /usr/bin/chromium), BASIC_USER and BASIC_PASSWORD (the page's basic
// credentials, when set), and SCENARIO:
// - "retry" (JOB_ID): clicks Retry on that failed job; the page says it was queued again.
// - "manage": with two delayed jobs to ada@example.com, opens one's detail (no payload), promotes
//   it, removes the other, pauses the queue, retries every failed job, resumes the queue; checks
//   the page refreshes itself, renews an expired access token, fits 1280 px, and that signing
//   out ends the session (and that the refresh token was never in session storage).
import { chromium } from "playwright-core";

const { BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, JOB_ID, BASIC_USER, BASIC_PASSWORD } = process.env;
const SCENARIO = process.env.SCENARIO || "retry";
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function noSecretsShown(page) {
  const shown = await page.locator("#board").innerText();
  check(!/password|token=|payload/i.test(shown), `the dashboard shows a secret: ${shown}`);
}

async function fitsTheWindow(page) {
  const width = await page.locator("html").evaluate((html) => html.scrollWidth);
  check(width <= 1280, `the page is ${width} px wide at 1280 px`);
}

try {
  const context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    ...(BASIC_USER ? { httpCredentials: { username: BASIC_USER, password: BASIC_PASSWORD } } : {}),
  });
  const page = await context.newPage();
  const external = [];
  let statsCalls = 0;
  page.on("request", (request) => {
    if (!request.url().startsWith(BASE_URL)) external.push(request.url());
    if (request.url().includes("/admin/queues/stats")) statsCalls += 1;
  });
  page.on("dialog", (dialog) => dialog.accept());
  const opened = await page.goto(`${BASE_URL}/api/v1/admin/queues/ui`);
  check(opened.ok(), `the page answered ${opened.status()}`);
  await page.fill("#email", ADMIN_EMAIL);
  await page.fill("#password", ADMIN_PASSWORD);
  await page.click("#login-form button[type=submit]");
  await page.locator("#board").waitFor({ timeout: 10000 });
  // Locators run in Playwright's isolated world, which the page's CSP (no eval) allows.
  const status = (text) => page.locator("#status", { hasText: text }).waitFor({ timeout: 10000 });
  const tab = (state) => page.click(`#tabs button[data-state="${state}"]`);
  const queue = page.locator('#queues tr[data-queue="email"]');

  if (SCENARIO === "retry") {
    const row = page.locator(`#jobs tr[data-job="${JOB_ID}"]`);
    await row.waitFor({ timeout: 10000 });
    await noSecretsShown(page);
    await fitsTheWindow(page);
    await row.locator("button.retry").click();
    await status(`Job ${JOB_ID} queued again`);
    await row.waitFor({ state: "detached", timeout: 10000 });
  } else {
    await tab("delayed");
    // Ada's two registration emails (the admin's sign-in alerts may be there too).
    const rows = page.locator("#jobs tbody tr", { hasText: "ada@example.com" });
    await rows.nth(1).waitFor({ timeout: 10000 });
    check((await rows.count()) === 2, `two delayed jobs to ada, not ${await rows.count()}`);
    await fitsTheWindow(page);
    const [first, second] = [await rows.nth(0).getAttribute("data-job"), await rows.nth(1).getAttribute("data-job")];
    await rows.nth(0).locator("button.detail").click();
    const detail = page.locator("#detail");
    await detail.waitFor({ timeout: 10000 });
    const fields = await detail.innerText();
    check(fields.includes(first) && /1 of 2/.test(fields) && fields.includes("451"), `the detail: ${fields}`);
    const failures = detail.locator("#failures tbody tr");
    check((await failures.count()) === 1, "one failed attempt listed");
    check((await failures.first().innerText()).includes("451"), "with its error");
    await noSecretsShown(page);

    await detail.locator("button.promote").click();
    await status(`Job ${first} promoted`);
    // Its second attempt fails at once (the mail server is down): failed for good.
    await tab("failed");
    await page.locator(`#jobs tr[data-job="${first}"]`).waitFor({ timeout: 15000 });

    await tab("delayed");
    await page.locator(`#jobs tr[data-job="${second}"] button.remove`).click();
    await status(`Job ${second} deleted`);
    await page.locator(`#jobs tr[data-job="${second}"]`).waitFor({ state: "detached", timeout: 10000 });

    await queue.locator("button.pause").click();
    await status("email paused");
    await queue.locator(".badge.paused").waitFor({ timeout: 10000 });
    await queue.locator("button.retry-all").click();
    await status("failed jobs queued again");
    await tab("waiting");
    await page.locator(`#jobs tr[data-job="${first}"]`).waitFor({ timeout: 10000 });
    await queue.locator("button.resume").click();
    await status("email resumed");
    await queue.locator("button.pause").waitFor({ timeout: 10000 });

    // Left alone, the page refreshes itself, renewing the access token once it has expired.
    const before = statsCalls;
    await page.waitForTimeout(11000);
    check(statsCalls >= before + 2, `the page refreshed itself ${statsCalls - before} times in 11 s`);
    check(await page.locator("#board").isVisible(), "still signed in after the access token expired");

    const kept = await page.locator("html").evaluate(() => Object.keys(sessionStorage).join(","));
    check(!/refresh/i.test(kept), `the refresh token is kept in memory only, not in: ${kept}`);
    // Another sign-in of the admin counts the live sessions before and after the sign-out.
    const other = await (await fetch(`${BASE_URL}/api/v1/auth/login`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ email: ADMIN_EMAIL, password: ADMIN_PASSWORD }),
    })).json();
    const sessions = async () => (await (await fetch(`${BASE_URL}/api/v1/sessions`, {
      headers: { Authorization: `Bearer ${other.data.accessToken}` },
    })).json()).data.length;
    const live = await sessions();
    await page.click("#signout");
    await page.locator("#login").waitFor({ timeout: 10000 });
    const stored = await page.locator("html").evaluate(() => sessionStorage.length);
    check(stored === 0, `sign-out left ${stored} items in session storage`);
    await page.locator("#status", { hasText: "Signed out." }).waitFor({ timeout: 10000 });
    const left = await sessions();
    check(left === live - 1, `sign-out ended the page's session: ${live} live before, ${left} after`);
  }
  check(external.length === 0, `requests left the server: ${external.join(", ")}`);
  console.log(`dashboard scenario ${SCENARIO} passed`);
} catch (error) {
  // What the page showed when the scenario failed, for the test's output.
  const shown = await browser.contexts()[0]?.pages()[0]?.locator("body").innerText().catch(() => "");
  console.error(`the page showed:\n${shown}`);
  throw error;
} finally {
  await browser.close();
}
