// One headless Chromium (Debian's package, driven by playwright-core) for a whole Go test that
// needs several browser steps with Go work in between: the browser starts once, and the test
// sends it one JSON command per line on stdin and reads one JSON answer per line on stdout.
//
// Every command names a person ("who"); each person has a browser context of their own, whose
// cookies last from one command to the next, as one person's browser does. Commands:
//
//   {"op":"goto",  "who":W, "url":U}        load U (following redirects)
//   {"op":"fill",  "who":W, "selector":S, "value":V}
//   {"op":"click", "who":W, "selector":S}   click S and wait for the navigation it starts
//   {"op":"shot",  "who":W, "name":N}       full-page screenshot SCREENSHOT_DIR/N.png
//
// goto and click answer the page they end on: {"url", "status" (of its main document), "title",
// "text" (the body's visible text, at most 4000 characters)}. Any failure answers {"error"}; the
// driver keeps running. It ends, closing Chromium, when stdin closes.
//
// Environment: CHROMIUM (default /usr/bin/chromium), SCREENSHOT_DIR (default ".").
import { chromium } from "playwright-core";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createInterface } from "node:readline";

const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`browser-driver: Chromium not found at ${executablePath} (install Debian's chromium package)`);
  process.exit(2);
}
const shots = process.env.SCREENSHOT_DIR || ".";
const browser = await chromium.launch({
  executablePath,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

const pages = new Map(); // who -> Page
async function pageOf(who) {
  if (!who) throw new Error("no person (who) named");
  let page = pages.get(who);
  if (!page) {
    const context = await browser.newContext();
    page = await context.newPage();
    page.setDefaultTimeout(30_000);
    pages.set(who, page);
  }
  return page;
}

async function describe(page, response) {
  await page.waitForLoadState("load");
  const text = await page.evaluate(() => (document.body ? document.body.innerText : ""));
  return { url: page.url(), status: response ? response.status() : 0, title: await page.title(), text: text.slice(0, 4000) };
}

async function run(cmd) {
  const page = await pageOf(cmd.who);
  switch (cmd.op) {
    case "goto":
      return describe(page, await page.goto(cmd.url));
    case "fill":
      await page.fill(cmd.selector, cmd.value ?? "");
      return {};
    case "click": {
      const [response] = await Promise.all([page.waitForNavigation(), page.click(cmd.selector)]);
      return describe(page, response);
    }
    case "shot":
      await page.screenshot({ path: join(shots, `${cmd.name}.png`), fullPage: true });
      return {};
    default:
      throw new Error(`unknown op ${JSON.stringify(cmd.op)}`);
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
try {
  for await (const line of lines) {
    if (!line.trim()) continue;
    let answer;
    try {
      answer = await run(JSON.parse(line));
    } catch (err) {
      answer = { error: String(err && err.message ? err.message : err).slice(0, 600) };
    }
    process.stdout.write(JSON.stringify(answer) + "\n");
  }
} finally {
  await browser.close();
}
