// Drives the widget test page in headless chromium and records what a user would see.
//
//   node widget_check.mjs <base-url> <out-dir>
//
// The page (served by one4d.bench.preview.serve_widget_page) has these payloads under /api/view:
// temp/one4d/fixture.o4dp (the demo scene), temp/one4d/dim.o4dp (the same scene with dark colours),
// temp/one4d/sparse.o4dp (the demo scene with a quarter of its points), temp/one4d/corrupt.o4dp (not a payload); a missing file gives HTTP 404. Screenshots of the viewer's
// stage go to <out-dir>/*.png and everything else to <out-dir>/results.json;
// tests/test_web_widget.py makes the assertions.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { launch } from "./browser.mjs";

const [baseUrl, outDir] = process.argv.slice(2);
if (!baseUrl || !outDir) {
  console.error("usage: node widget_check.mjs <base-url> <out-dir>");
  process.exit(2);
}
const FIXTURE = { filename: "fixture.o4dp", subfolder: "one4d", type: "temp" };
const DIM = { filename: "dim.o4dp", subfolder: "one4d", type: "temp" };
const SPARSE = { filename: "sparse.o4dp", subfolder: "one4d", type: "temp" };
const STEP_TIMEOUT = 20_000;

const browser = await launch({ width: 700, height: 640 });
const { page, messages } = browser;
const results = { steps: {}, messages: [] };
const mark = (name) => ({ name, at: messages.length });
const phases = [];

async function waitState(state) {
  await page.waitForSelector(`.one4d-preview[data-state="${state}"]`, { timeout: STEP_TIMEOUT });
}

/** Waits until the viewer has drawn again (at least one render after `since`), then two frames. */
async function waitRendered(since) {
  await page.waitForFunction((n) => Number(document.querySelector(".one4d-preview")?.dataset.renders || 0) > n,
    since, { timeout: STEP_TIMEOUT });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

const renders = () => page.evaluate(() => Number(document.querySelector(".one4d-preview")?.dataset.renders || 0));

/** Creates a fresh node of `type`, shows the payload `entry` in it and waits until it has drawn. */
async function showIn(type, entry) {
  await page.evaluate((t) => window.harness.create(t), type);
  const before = await renders();
  await page.evaluate((e) => window.harness.execute({ one4d_preview: [e] }), entry);
  await waitState("ready");
  await waitRendered(before);
}
const dataset = () => page.evaluate(() => ({ ...document.querySelector(".one4d-preview").dataset }));
const statusText = () => page.evaluate(() => document.querySelector(".one4d-status").textContent);
const shot = (name) => page.locator(".one4d-stage").screenshot({ path: join(outDir, `${name}.png`) });

try {
  phases.push(mark("happy"));
  await page.goto(`${baseUrl}/widget_page.html`, { waitUntil: "load" });
  await page.waitForFunction(() => window.harness, null, { timeout: STEP_TIMEOUT });
  await page.evaluate(() => window.harness.ready);

  // Other node types get no widget; ours do, last, holding no value.
  results.steps.otherNode = await page.evaluate(() => window.harness.create("SomeOtherNode"));
  results.steps.created = await page.evaluate(() => window.harness.create("One4DPreview4D"));
  await waitState("idle");
  results.steps.idleText = await statusText();

  // Load the fixture: points appear.
  let before = await renders();
  await page.evaluate((entry) => window.harness.execute({ one4d_preview: [entry] }), FIXTURE);
  await waitState("ready");
  await waitRendered(before);
  results.steps.loaded = await dataset();
  await shot("rgb_frame0");

  // Another frame through the slider.
  const last = Number(results.steps.loaded.frames) - 1;
  before = await renders();
  await page.locator(".one4d-frame").fill(String(last));
  await waitRendered(before);
  results.steps.lastFrame = await dataset();
  await shot("rgb_frame_last");

  // Colour modes.
  for (const mode of ["depth", "height", "rgb"]) {
    before = await renders();
    await page.locator(".one4d-color").selectOption(mode);
    await waitRendered(before);
    results.steps[`color_${mode}`] = await dataset();
    await shot(`${mode}_frame_last`);
  }

  // Cameras and trajectory off, then on again.
  before = await renders();
  await page.locator(".one4d-cameras").uncheck();
  await page.locator(".one4d-trajectory").uncheck();
  await waitRendered(before);
  await shot("no_cameras");
  before = await renders();
  await page.locator(".one4d-cameras").check();
  await page.locator(".one4d-trajectory").check();
  await waitRendered(before);

  // Point size.
  before = await renders();
  await page.locator(".one4d-size").fill("5");
  await waitRendered(before);
  await shot("size5");
  results.steps.size5 = await dataset();
  before = await renders();
  await page.locator(".one4d-size").fill(results.steps.lastFrame.pointSize);  // the automatic size, now by hand
  await waitRendered(before);

  // Point budget: a smaller uniform subsample.
  const budgetOptions = await page.locator(".one4d-budget option").evaluateAll((os) => os.map((o) => o.value));
  results.steps.budgetOptions = budgetOptions;
  before = await renders();
  await page.locator(".one4d-budget").selectOption(budgetOptions[budgetOptions.length - 1]);
  await waitRendered(before);
  results.steps.budget = await dataset();
  await shot("budget");
  await page.locator(".one4d-budget").selectOption("0");

  // Orbit with the mouse: the picture moves.
  before = await renders();
  const box = await page.locator(".one4d-canvas").boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width / 2 + 80, box.y + box.height / 2 + 20, { steps: 5 });
  await page.mouse.up();
  await waitRendered(before);
  await shot("orbited");
  before = await renders();
  await page.locator(".one4d-fit").click();
  await waitRendered(before);
  await shot("fit");

  // Playback.
  await page.locator(".one4d-fps").fill("20");
  await page.locator(".one4d-fps").dispatchEvent("change");
  await page.locator(".one4d-play").click();
  results.steps.playFramesSeen = await page.evaluate(async () => {
    const root = document.querySelector(".one4d-preview");
    const seen = new Set();
    const started = performance.now();
    while (performance.now() - started < 1500) {
      seen.add(root.dataset.frame);
      await new Promise((r) => setTimeout(r, 30));
    }
    return [...seen];
  });
  await page.locator(".one4d-play").click();

  // Workflow save and reload, then resize.
  results.steps.serialized = await page.evaluate(() => window.harness.serialize());
  results.steps.promptInputs = await page.evaluate(() => window.harness.promptInputs());
  results.steps.reload = await page.evaluate(() => window.harness.reload());
  await waitState("idle");
  before = await renders();
  await page.evaluate((entry) => window.harness.execute({ one4d_preview: [entry] }), FIXTURE);
  await waitState("ready");
  await waitRendered(before);
  results.steps.reloaded = await dataset();
  const canvasSize = () => page.evaluate(() => {
    const c = document.querySelector(".one4d-canvas");
    return [c.width, c.height, c.clientWidth, c.clientHeight];
  });
  results.steps.canvasBeforeResize = await canvasSize();
  before = await renders();
  await page.evaluate(() => window.harness.resize(620, 560));
  await waitRendered(before);
  results.steps.canvasAfterResize = await canvasSize();
  // The whole page, and where the viewer's canvas sits in it (CSS pixels = screenshot pixels here).
  results.steps.canvasBoxAtScreenshot = await page.locator(".one4d-canvas").boundingBox();
  results.steps.atScreenshot = await dataset();
  await page.screenshot({ path: join(outDir, "widget.png") });

  // Errors are shown in the widget: a missing file, then a file that is not a payload.
  phases.push(mark("errors"));
  await page.evaluate(() => window.harness.execute({ one4d_preview: [{ filename: "missing.o4dp", subfolder: "one4d", type: "temp" }] }));
  await waitState("error");
  results.steps.missingText = await statusText();
  await page.evaluate(() => window.harness.execute({ one4d_preview: [{ filename: "corrupt.o4dp", subfolder: "one4d", type: "temp" }] }));
  await page.waitForFunction(() => document.querySelector(".one4d-status").textContent.includes("not a One4D"), null, { timeout: STEP_TIMEOUT });
  results.steps.corruptText = await statusText();
  await shot("error");

  // Removing the node releases the viewer.
  phases.push(mark("teardown"));
  results.steps.removed = await page.evaluate(() => {
    window.harness.create("SomeOtherNode");
    return document.querySelectorAll(".one4d-canvas").length;
  });

  // Readable defaults: dark colours get a light background; the background can be set by hand.
  phases.push(mark("readability"));
  await showIn("One4DPreview4D", DIM);
  results.steps.dim = await dataset();
  await shot("rgb_dim");
  before = await renders();
  await page.locator(".one4d-background").selectOption("dark");
  await waitRendered(before);
  results.steps.dimDark = await dataset();
  await shot("rgb_dim_dark_background");
  await page.locator(".one4d-background").selectOption("auto");
  results.steps.dimAuto = await dataset();

  // Few points (like the embedded model's 64 x 64 frames): the automatic size grows with the spacing.
  await showIn("One4DPreview4D", SPARSE);
  results.steps.sparse = await dataset();
  await shot("rgb_sparse");

  // Layout: a new Save 4D node (its nine widgets above the viewer), sized the way the frontend
  // sizes DOM widgets, at 100% and 125% canvas zoom, then narrow.
  phases.push(mark("layout"));
  await page.setViewportSize({ width: 900, height: 900 });  // room for the node at 125%
  await showIn("One4DSave4D", FIXTURE);
  results.steps.layout = {};
  for (const zoom of [1, 1.25]) {
    await page.evaluate((z) => window.harness.zoom(z), zoom);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    results.steps.layout[String(zoom)] = await page.evaluate(() => window.harness.layout());
  }
  const node125 = results.steps.layout["1.25"].node;
  await page.screenshot({ path: join(outDir, "save_node_zoom125.png"),
    clip: { x: 0, y: 0, width: Math.min(900, node125.x + node125.width + 8), height: Math.min(900, node125.y + node125.height + 8) } });
  await page.evaluate(() => window.harness.zoom(1));
  before = await renders();
  await page.evaluate(() => window.harness.resize(300, 0));  // as narrow as a user may drag it; the height grows to the minimum
  await waitRendered(before);
  results.steps.layout.narrow = await page.evaluate(() => window.harness.layout());
  const narrow = results.steps.layout.narrow.node;
  await page.screenshot({ path: join(outDir, "save_node_narrow.png"),
    clip: { x: 0, y: 0, width: narrow.x + narrow.width + 8, height: Math.min(900, narrow.y + narrow.height + 8) } });

  // Pages that expose their own three.js: the widget uses that copy (no second copy, no warning).
  results.steps.pageThree = {};
  for (const mode of ["importmap", "global"]) {
    phases.push(mark(`three-${mode}`));
    await page.goto(`${baseUrl}/widget_page.html?three=${mode}`, { waitUntil: "load" });
    await page.waitForFunction(() => window.harness, null, { timeout: STEP_TIMEOUT });
    await page.evaluate(() => window.harness.ready);
    await showIn("One4DPreview4D", FIXTURE);
    results.steps.pageThree[mode] = {
      ...(await dataset()),
      pageRevision: await page.evaluate(() => String(window.__THREE__ ?? "")),
    };
    await shot(`three_${mode}`);
  }
  results.ok = true;
} catch (err) {
  results.ok = false;
  results.error = String(err && err.stack || err);
  await page.screenshot({ path: join(outDir, "failure.png") }).catch(() => {});
} finally {
  results.messages = messages;
  results.phases = phases;
  writeFileSync(join(outDir, "results.json"), JSON.stringify(results, null, 2));
  await browser.close();
}
process.exit(results.ok ? 0 : 1);
