// Benchmark of the 4D preview widget in headless chromium (run by one4d/bench_preview.py).
//
//   node bench_widget.mjs <base-url> '<{"filename","subfolder","type"} as JSON>' [seconds]
//
// load_ms: from the node's "executed" message to the first picture of the sequence on screen
//   (download, parse, viewer and three.js import, GPU upload, first draw, one more frame).
// fps: pictures drawn per second while playing every point of each frame with the fps control at
//   its maximum (60): each display refresh shows the next frame if the renderer keeps up. Also
//   measured at the widget's default point budget (lower with software WebGL).
// Prints one JSON line. Without a GPU, chromium's WebGL is SwiftShader (software).
import { launch } from "./browser.mjs";

const [baseUrl, entryJson, secondsArg] = process.argv.slice(2);
if (!baseUrl || !entryJson) {
  console.error("usage: node bench_widget.mjs <base-url> <entry-json> [seconds]");
  process.exit(2);
}
const seconds = Number(secondsArg || 5);
const browser = await launch({ width: 900, height: 760 });
const { page, messages } = browser;
let exitCode = 0;
try {
  await page.goto(`${baseUrl}/widget_page.html`, { waitUntil: "load" });
  await page.waitForFunction(() => window.harness, null, { timeout: 20_000 });
  await page.evaluate(() => window.harness.ready);
  await page.evaluate(() => { window.harness.create("One4DPreview4D"); window.harness.resize(640, 560); });

  const loadMs = await page.evaluate(async (entry) => {
    const root = document.querySelector(".one4d-preview");
    const started = performance.now();
    window.harness.execute({ one4d_preview: [entry] });
    await new Promise((resolve, reject) => {
      const poll = () => {
        if (root.dataset.state === "error") reject(new Error(root.textContent));
        else if (root.dataset.state === "ready" && Number(root.dataset.renders || 0) >= 1) resolve();
        else setTimeout(poll, 5);
      };
      poll();
    });
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    return performance.now() - started;
  }, JSON.parse(entryJson));

  await page.locator(".one4d-fps").fill("60");
  await page.locator(".one4d-fps").dispatchEvent("change");
  const defaultBudget = await page.locator(".one4d-budget").inputValue();
  const play = (budget) => page.evaluate(async ([ms, value]) => {
    const root = document.querySelector(".one4d-preview");
    const select = root.querySelector(".one4d-budget");
    select.value = value;
    select.dispatchEvent(new Event("change"));
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const renders0 = Number(root.dataset.renders);
    root.querySelector(".one4d-play").click();
    const t0 = performance.now();
    let frameChanges = 0;
    let lastFrame = root.dataset.frame;
    while (performance.now() - t0 < ms) {
      await new Promise((r) => requestAnimationFrame(r));
      if (root.dataset.frame !== lastFrame) { frameChanges += 1; lastFrame = root.dataset.frame; }
    }
    const elapsed = performance.now() - t0;
    root.querySelector(".one4d-play").click();
    return {
      fps: (Number(root.dataset.renders) - renders0) / (elapsed / 1000),
      frames_shown_per_s: frameChanges / (elapsed / 1000),
      points_per_frame: Number(root.dataset.points),
    };
  }, [seconds * 1000, budget]);
  const full = await play("0");
  const budgeted = defaultBudget === "0" ? full : await play(defaultBudget);

  const info = await page.evaluate(() => {
    const canvas = document.querySelector(".one4d-canvas");
    const gl = document.createElement("canvas").getContext("webgl2");
    const ext = gl && gl.getExtension("WEBGL_debug_renderer_info");
    return {
      renderer: ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : "unknown",
      canvas: [canvas.width, canvas.height],
      points: Number(document.querySelector(".one4d-preview").dataset.points),
      totalPoints: Number(document.querySelector(".one4d-preview").dataset.totalPoints),
    };
  });
  const errors = messages.filter((m) => ["error", "pageerror", "requestfailed"].includes(m.type)).map((m) => m.text);
  console.log(JSON.stringify({
    load_ms: loadMs,
    fps: full.fps,
    full,
    default_budget: budgeted,
    fetch_ms: Number(await page.evaluate(() => document.querySelector(".one4d-preview").dataset.fetchMs)),
    ...info,
    errors,
  }));
} catch (err) {
  console.error(String(err && err.stack || err));
  exitCode = 1;
} finally {
  await browser.close();
}
process.exit(exitCode);
