// Drives the sandbox page in Debian's headless Chromium with playwright-core (no browser
// download): Ada types a task, Grace approves the plan from her Home tab, the completion
// card appears; Ada
// types another, Grace rejects it with a reason in the modal; the cost digest's chart
// shows in #aws-costs. One numbered screenshot per step.
//
//   node drive.mjs <playwright-core dir> <sandbox URL> <screenshot dir>
//
// Prints one JSON line: {"ok": true, "timings": {...}} or {"ok": false, "error": ...}.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [playwrightDir, url, shots] = process.argv.slice(2);
const { chromium } = await import(pathToFileURL(join(playwrightDir, "index.mjs")).href);

const STEP_MS = 60_000;
const REASON = "we keep pricing in Python; fix the bug instead";
const timings = {};
const started = Date.now();
const mark = (name) => { timings[name] = Date.now() - started; };
// A message the bot edits is drawn anew, so an element found a moment ago can leave the
// DOM while Playwright scrolls to it; find it again rather than fail the run.
const scrollTo = async (locator) => {
  for (let attempt = 1; ; attempt++) {
    try {
      await locator.scrollIntoViewIfNeeded({ timeout: 5_000 });
      return;
    } catch (err) {
      if (attempt >= 10 || !/not attached|not stable/.test(String(err))) throw err;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
};

mkdirSync(shots, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
page.setDefaultTimeout(STEP_MS);
const problems = [];
page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });

try {
  await page.goto(`${url}/?user=U0ADA`);
  await page.getByText("connected to the sandbox").waitFor();
  mark("page_ready");
  const paneAtStart = await page.locator("#thread-pane").isVisible();

  await page.locator("#composer").fill("/agent run fix the discount calculation");
  await page.locator("#composer").press("Enter");
  await page.locator("#messages .ephemeral", { hasText: "T-1 queued" }).waitFor();
  mark("acknowledged");
  await page.screenshot({ path: join(shots, "01-command-acknowledged.png") });

  const card = page.locator("#messages .message", { hasText: "T-1 · fix the discount calculation" });
  await card.getByText("awaiting approval").waitFor();
  await card.locator(".replies").click();
  const thread = page.locator("#thread-pane");
  await thread.locator(".message", { hasText: "Plan for T-1" }).waitFor();
  mark("plan_shown");
  await page.screenshot({ path: join(shots, "02-plan-in-thread.png") });

  // Grace approves from her Home tab, which the bot publishes when she opens it.
  await page.locator("#user").selectOption("U0GRACE");
  await page.getByText("connected to the sandbox").waitFor();
  await page.locator("#open-home").click();
  const home = page.locator("#home");
  // Her own Home, once published: the page may still show the view it had for Ada.
  await home.locator('[data-action-id="plan_approve"]').first().waitFor();
  await home.getByText("T-1 · fix the discount calculation").first().waitFor();
  mark("home_shown");
  await page.screenshot({ path: join(shots, "02b-home-waiting-for-you.png") });
  const homeText = await home.innerText();
  await home.locator('[data-action-id="plan_approve"]').click();
  // The change republishes her Home: nothing waits any more.
  await home.getByText("Nothing waits for your approval.").waitFor();
  const homeAfterText = await home.innerText();
  await page.locator('#channels [data-channel="C0DEV"]').click();
  await card.locator(".replies").click();
  await thread.locator(".message", { hasText: "Approved by" }).first().waitFor();
  mark("approved");

  const outcome = thread.locator(".message", { hasText: "T-1 succeeded" });
  await outcome.waitFor();
  await card.getByText("succeeded").waitFor();
  mark("succeeded");
  await scrollTo(outcome);
  await page.screenshot({ path: join(shots, "03-completion-card.png") });

  const outcomeText = await outcome.innerText();
  const cardText = await card.innerText();

  // Ada asks for something else; Grace rejects it, saying why, in the reason modal.
  await page.locator("#close-thread").click();
  const paneAfterClose = await page.locator("#thread-pane").isVisible();
  await page.locator("#user").selectOption("U0ADA");
  await page.getByText("connected to the sandbox").waitFor();
  await page.locator("#composer").fill("/agent run rewrite pricing in rust");
  await page.locator("#composer").press("Enter");
  const second = page.locator("#messages .message", { hasText: "T-2 · rewrite pricing in rust" });
  await second.getByText("awaiting approval").waitFor();
  await page.locator("#user").selectOption("U0GRACE");
  await page.getByText("connected to the sandbox").waitFor();
  await second.locator(".replies").click();
  await thread.locator(".message", { hasText: "Plan for T-2" }).waitFor();
  await thread.locator('[data-action-id="plan_reject"]').click();
  const modal = page.locator("#modal");
  await modal.locator("textarea").fill(REASON);
  mark("reject_modal");
  await page.screenshot({ path: join(shots, "04-reject-reason-modal.png") });
  await page.locator("#modal-submit").click();
  await modal.waitFor({ state: "detached" });
  const rejected = page.locator(".message", { hasText: "Rejected by" }).filter({ hasText: REASON }).first();
  await rejected.waitFor();
  await second.getByText("rejected").first().waitFor();
  mark("rejected");
  await scrollTo(rejected);
  await page.screenshot({ path: join(shots, "05-rejected-with-reason.png") });
  const rejectedText = await rejected.innerText();
  const rejectedCardText = await second.innerText();

  // The demo AWS estate seeds in the background; the sidebar says when it is there,
  // and the day's cost digest follows in #aws-costs with its chart.
  const estate = page.locator("#notes", { hasText: "AWS demo estate ready" });
  await estate.waitFor();
  mark("aws_estate_ready");
  const estateText = await estate.innerText();
  await page.locator("#close-thread").click();
  await page.locator('#channels [data-channel="C0COSTS"]').click();
  const digest = page.locator("#messages .message", { hasText: "AWS cost digest" }).first();
  await digest.waitFor();
  // The chart is beside the digest, or in its thread.
  const beside = page.locator("#messages .files img");
  await beside.or(digest.locator(".replies")).first().waitFor();
  let chart = beside.first();
  if ((await beside.count()) === 0) {
    await digest.locator(".replies").click();
    chart = thread.locator(".files img").first();
  }
  await chart.waitFor();
  await page.waitForFunction((img) => img.complete && img.naturalWidth > 0, await chart.elementHandle());
  const chartSize = await chart.evaluate((img) => [img.naturalWidth, img.naturalHeight]);
  mark("digest_chart");
  await scrollTo(chart);
  await page.screenshot({ path: join(shots, "06-digest-chart.png") });
  const digestText = await digest.innerText();
  // Every emoji code the bot sent shows as an emoji, none as `:name:` text.
  const rawEmoji = (await page.locator("#messages").innerText()).match(/:[a-z][a-z0-9_+]*:/g) || [];

  console.log(JSON.stringify({
    ok: true, timings, outcomeText, cardText, rejectedText, estateText, digestText, chartSize, problems,
    paneAtStart, paneAfterClose, rejectedCardText, rawEmoji, homeText, homeAfterText,
  }));
} catch (err) {
  await page.screenshot({ path: join(shots, "failure.png") }).catch(() => {});
  const body = await page.locator("body").innerText().catch(() => "");
  console.log(JSON.stringify({ ok: false, error: String(err), timings, problems, body: body.slice(-3000) }));
  process.exitCode = 1;
} finally {
  await browser.close();
}
