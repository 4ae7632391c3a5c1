// Load every example workflow into a running ComfyUI page (headless chromium), check that the frontend
// keeps its widget values, and take the pictures: example_workflows/<name>.jpg thumbnails and, for the
// embedded workflow (run on the server), docs/images/ pictures of the graph and of the results.
//
//   node scripts/workflow_pictures.mjs http://127.0.0.1:8188 [--run]
//
// Needs tests/web's playwright-core (bash .ci/install_web.sh) and a ComfyUI with this pack in custom_nodes.
// The thumbnails are then scaled to 800 px wide (python -c "from PIL import Image; ..." in docs/nodes.md).
// Prints a JSON report (frontend version, per workflow: widget values kept, console errors, run result).
import { readFileSync, readdirSync, mkdirSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { launch } from "../tests/web/browser.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const url = process.argv[2] || "http://127.0.0.1:8188";
const run = process.argv.includes("--run");
const WF = join(ROOT, "example_workflows");
const IMAGES = join(ROOT, "docs", "images");
mkdirSync(IMAGES, { recursive: true });

const b = await launch({ width: 1600, height: 1000 });
const CANVAS = { x: 64, y: 82, width: 1600 - 64, height: 1000 - 82 };  // the graph without the app's side and top bars
const { page, messages } = b;
const report = { workflows: {} };

async function fitView() {
  await page.evaluate(() => {
    const app = window.app, nodes = app.graph._nodes;
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const n of nodes) {
      x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - 30);
      x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]);
    }
    const c = app.canvas.canvas, pad = 30;
    const scale = Math.min((c.width / devicePixelRatio - 2 * pad) / (x1 - x0), (c.height / devicePixelRatio - 2 * pad) / (y1 - y0), 1.2);
    app.canvas.ds.scale = scale;
    app.canvas.ds.offset = [pad / scale - x0, pad / scale - y0];
    app.canvas.setDirty(true, true);
  });
  await page.waitForTimeout(600);
}

try {
  await page.goto(url, { waitUntil: "load" });
  await page.waitForFunction(() => window.app && window.app.graph && window.LiteGraph, null, { timeout: 90000 });
  await page.waitForTimeout(3000);
  await page.keyboard.press("Escape");
  report.frontend = await page.evaluate(() => window.__COMFYUI_FRONTEND_VERSION__ || null);
  await page.evaluate(async () => {  // no minimap in the pictures
    try { await window.app.extensionManager.setting.set("Comfy.Minimap.Visible", false); } catch (e) { /* older frontends */ }
  });
  const names = readdirSync(WF).filter((f) => f.endsWith(".json")).map((f) => f.slice(0, -5)).sort();
  for (const name of names) {
    const wf = JSON.parse(readFileSync(join(WF, `${name}.json`), "utf8"));
    const before = messages.length;
    await page.evaluate(async (data) => { await window.app.loadGraphData(data, true, true, "one4d"); }, wf);
    await page.waitForTimeout(1500);
    await page.keyboard.press("Escape");  // a missing-models dialog, if any
    await page.waitForTimeout(300);
    const back = await page.evaluate(() => window.app.graph.serialize());
    const changed = [];
    for (const n of wf.nodes) {
      const m = back.nodes.find((x) => x.id === n.id);
      if (!m) { changed.push(`${n.type}#${n.id} missing`); continue; }
      if (m.type !== n.type) changed.push(`${n.type}#${n.id} became ${m.type}`);
      if (JSON.stringify(m.widgets_values ?? []) !== JSON.stringify(n.widgets_values ?? []))
        changed.push(`${n.type}#${n.id}: ${JSON.stringify(n.widgets_values)} -> ${JSON.stringify(m.widgets_values)}`);
    }
    const prompt = await page.evaluate(async () => (await window.app.graphToPrompt()).output);
    const api = JSON.parse(readFileSync(join(WF, "api", `${name}.json`), "utf8"));
    const promptDiff = [];
    for (const [id, node] of Object.entries(api)) {
      const p = prompt[id];
      if (!p) { promptDiff.push(`${id} missing from graphToPrompt`); continue; }
      for (const [k, v] of Object.entries(node.inputs))
        if (JSON.stringify(p.inputs[k]) !== JSON.stringify(v)) promptDiff.push(`${id}.${k}: ${JSON.stringify(v)} vs ${JSON.stringify(p.inputs[k])}`);
    }
    for (const id of Object.keys(prompt)) if (!api[id]) promptDiff.push(`${id} only in graphToPrompt`);
    await fitView();
    await page.screenshot({ path: join(WF, `${name}.jpg`), type: "jpeg", quality: 85, clip: CANVAS });
    report.workflows[name] = {
      widget_values_kept: changed.length === 0, changed, api_twin_equals_frontend_prompt: promptDiff.length === 0, promptDiff,
      errors: messages.slice(before).filter((m) => m.type === "error" || m.type === "pageerror").map((m) => m.text).slice(0, 5),
    };
    if (name === "one4d_image_to_4d_wan14b")
      await page.screenshot({ path: join(IMAGES, "workflow_image_to_4d_wan14b.jpg"), type: "jpeg", quality: 88, clip: CANVAS });
  }
  if (run) {
    const wf = JSON.parse(readFileSync(join(WF, "one4d_embedded_cpu.json"), "utf8"));
    await page.evaluate(async (data) => { await window.app.loadGraphData(data, true, true, "one4d"); }, wf);
    await page.waitForTimeout(1000);
    const t0 = Date.now();
    await page.evaluate(() => window.app.queuePrompt(0));
    await page.waitForSelector('.one4d-preview[data-state="ready"]', { timeout: 180000 });
    await page.waitForFunction(() => Number(document.querySelector(".one4d-preview").dataset.renders || 0) > 0);
    await page.waitForTimeout(2500);
    report.run = { seconds_until_widget_ready: (Date.now() - t0) / 1000,
                   widget: await page.evaluate(() => ({ ...document.querySelector(".one4d-preview").dataset })) };
    await fitView();
    await page.screenshot({ path: join(IMAGES, "result_embedded_workflow.jpg"), type: "jpeg", quality: 88, clip: CANVAS });
    await page.screenshot({ path: join(WF, "one4d_embedded_cpu.jpg"), type: "jpeg", quality: 85, clip: CANVAS });
    // close-up of the Save 4D node
    const box = await page.evaluate(() => {
      const app = window.app, n = app.graph._nodes.find((x) => x.type === "One4DSave4D");
      const [x, y] = app.canvas.ds.convertOffsetToCanvas([n.pos[0], n.pos[1] - 30]);
      return { x, y, w: n.size[0] * app.canvas.ds.scale, h: (n.size[1] + 30) * app.canvas.ds.scale };
    });
    await page.evaluate(() => {
      const app = window.app, n = app.graph._nodes.find((x) => x.type === "One4DSave4D");
      app.canvas.ds.scale = 1; app.canvas.ds.offset = [120 - n.pos[0], 140 - n.pos[1]]; app.canvas.setDirty(true, true);
    });
    await page.waitForTimeout(1500);
    const node = await page.evaluate(() => Array.from(window.app.graph._nodes.find((x) => x.type === "One4DSave4D").size));
    const rect = await page.evaluate(() => { const r = window.app.canvas.canvas.getBoundingClientRect(); return [r.left, r.top]; });
    await page.screenshot({ path: join(IMAGES, "save4d_widget.jpg"), type: "jpeg", quality: 90,
                            clip: { x: rect[0] + 110, y: rect[1] + 100, width: node[0] + 20, height: node[1] + 50 } });
    report.box = box;
    // core Preview3D fed by Save 4D's model_file output (the GLB)
    await page.evaluate(() => {
      const app = window.app, save = app.graph._nodes.find((x) => x.type === "One4DSave4D");
      const p3d = window.LiteGraph.createNode("Preview3D");
      p3d.pos = [save.pos[0], save.pos[1] + save.size[1] + 60];
      app.graph.add(p3d);
      const slot = p3d.inputs.findIndex((i) => i.name === "model_file");
      save.connect(0, p3d, slot);
    });
    await page.evaluate(() => window.app.queuePrompt(0));
    await page.waitForTimeout(8000);
    await page.evaluate(() => {
      const app = window.app, n = app.graph._nodes.find((x) => x.type === "Preview3D");
      app.canvas.ds.scale = 1; app.canvas.ds.offset = [120 - n.pos[0], 140 - n.pos[1]]; app.canvas.setDirty(true, true);
    });
    await page.waitForTimeout(1500);
    const p3 = await page.evaluate(() => {
      const n = window.app.graph._nodes.find((x) => x.type === "Preview3D");
      return { size: Array.from(n.size), model_file: n.widgets?.find((w) => w.name === "model_file")?.value ?? null };
    });
    report.preview3d = p3;
    await page.screenshot({ path: join(IMAGES, "preview3d_glb.jpg"), type: "jpeg", quality: 90,
                            clip: { x: rect[0] + 110, y: rect[1] + 100, width: p3.size[0] + 20, height: p3.size[1] + 50 } });
  }
} catch (e) {
  report.error = String(e.stack || e);
  await page.screenshot({ path: join(IMAGES, "failure.png") }).catch(() => {});
}
report.console = messages.filter((m) => m.type === "error" || m.type === "pageerror" || m.type === "warning").map((m) => m.text).slice(0, 30);
console.log(JSON.stringify(report, null, 1));
await b.close();
