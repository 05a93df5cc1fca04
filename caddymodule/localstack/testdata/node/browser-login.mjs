// A real browser at the IdP: headless Chromium (Debian's package) driven by playwright-core goes
// through the login and consent pages as a person would, typing and clicking, and keeps a
// screenshot of each page. Used as the mcpgate client's -open-with program: the authorization URL
// is the last argument. Ends when the browser reaches the client's loopback callback.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR, LOGIN_USER, LOGIN_GITHUB_TOKEN.
import { chromium } from "playwright-core";
import { existsSync } from "node:fs";
import { join } from "node:path";

const authURL = process.argv[process.argv.length - 1];
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`browser-login: Chromium not found at ${executablePath} (install Debian's chromium package)`);
  process.exit(2);
}
const shots = process.env.SCREENSHOT_DIR || ".";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  // The pages are served with a certificate from Caddy's local CA, which this throwaway browser
  // profile does not have in its trust store; a person would have trusted it.
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  await page.goto(authURL);
  await page.waitForSelector("input[name=username]");
  await page.screenshot({ path: join(shots, "login.png"), fullPage: true });
  await page.fill("input[name=username]", process.env.LOGIN_USER);
  if (process.env.LOGIN_GITHUB_TOKEN) await page.fill("input[name=github_token]", process.env.LOGIN_GITHUB_TOKEN);
  await Promise.all([page.waitForNavigation(), page.click("form:has(input[name=username]) button[type=submit]")]);
  await page.waitForSelector("button[value=approve]");
  await page.screenshot({ path: join(shots, "consent.png"), fullPage: true });
  await Promise.all([page.waitForURL(/^http:\/\/127\.0\.0\.1:\d+\//), page.click("button[value=approve]")]);
  await page.waitForLoadState("load");
  await page.screenshot({ path: join(shots, "callback.png"), fullPage: true });
  console.log(JSON.stringify({ final: page.url().split("?")[0], title: await page.title() }));
} finally {
  await browser.close();
}
