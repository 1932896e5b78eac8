// Opens the queue dashboard in headless Chromium as an administrator, clicks "Retry" on the
// failed job named by JOB_ID, and checks the page says it was queued again. Exits non-zero,
// with the reason, on any failure. Environment: BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, JOB_ID,
// CHROMIUM (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const { BASE_URL, ADMIN_EMAIL, ADMIN_PASSWORD, JOB_ID } = process.env;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage();
  const external = [];
  page.on("request", (request) => {
    if (!request.url().startsWith(BASE_URL)) external.push(request.url());
  });
  await page.goto(`${BASE_URL}/api/v1/admin/queues/ui`);
  await page.fill("#email", ADMIN_EMAIL);
  await page.fill("#password", ADMIN_PASSWORD);
  await page.click("#login-form button[type=submit]");
  const row = page.locator(`#failed tr[data-job="${JOB_ID}"]`);
  await row.waitFor({ timeout: 10000 });
  const shown = await page.locator("#board").innerText();
  if (/password|token=|payload/i.test(shown.replace(/Sign in.*$/s, ""))) {
    throw new Error(`the dashboard shows a secret: ${shown}`);
  }
  await row.locator("button.retry").click();
  // Locators run in Playwright's isolated world, which the page's CSP (no eval) allows.
  await page
    .locator("#status", { hasText: `Job ${JOB_ID} queued again` })
    .waitFor({ timeout: 10000 });
  await row.waitFor({ state: "detached", timeout: 10000 });
  if (external.length > 0) throw new Error(`requests left the server: ${external.join(", ")}`);
  console.log("retried from the dashboard");
} finally {
  await browser.close();
}
