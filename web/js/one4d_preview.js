// One4D 4D preview widget: a ComfyUI frontend extension.
//
// ComfyUI imports this file at page load (every *.js under the pack's WEB_DIRECTORY, "./web").
// It adds a DOM widget to the One4DPreview4D and One4DSave4D nodes. When such a node has run,
// its UI output {"one4d_preview": [{filename, subfolder, type}]} names a payload file (.o4dp,
// docs/preview.md); the widget downloads it through /view and shows it in a WebGL viewer.
//
// The viewer (three.js, ~2 MB) is imported only when the first payload arrives, and like the
// payload parser it lives in .mjs files that ComfyUI serves but does not import as extensions.
// Those imports are dynamic, so a failure to load them is shown in the widget instead of
// breaking this extension at page load.
//
// The widget holds no value: it is excluded from the saved workflow (widgets_values) and from
// the prompt sent to the server, so adding it never shifts the node's saved widget values.
import { app } from "../../../scripts/app.js";
import { api } from "../../../scripts/api.js";

const EXTENSION_NAME = "One4D.Preview4D";
const NODE_TYPES = new Set(["One4DPreview4D", "One4DSave4D"]);
const UI_KEY = "one4d_preview";
const WIDGET_NAME = "one4d_preview";
const MIN_HEIGHT = 320;
const NEW_NODE_SIZE = [440, 520];

let modulesPromise = null;

/** Imports the payload parser and the viewer (with three.js) once, on first use. */
function loadModules() {
  modulesPromise ??= Promise.all([import("./one4d_payload.mjs"), import("./one4d_viewer.mjs")])
    .then(([payload, viewer]) => ({ payload, viewer }))
    .catch((err) => {
      modulesPromise = null;  // let a later run try again
      throw new Error(
        `Could not load the 3D viewer of the One4D node pack (${err.message || err}). ` +
        "Check that the pack's web/vendor/three folder is complete, then reload the page.");
    });
  return modulesPromise;
}

// Layout: the widget fills the element the frontend sizes for it (node height minus the other
// widgets), whatever the canvas zoom; the control bar keeps its natural height (its rows wrap on
// narrow nodes) and the stage takes what is left, so the controls are never cut off. Nothing in it
// has a minimum height of its own: getMinHeight asks the node for room instead.
const STYLE = `
.one4d-preview { display: flex; flex-direction: column; width: 100%; height: 100%; min-height: 0; overflow: hidden;
  box-sizing: border-box; font: 11px/1.3 sans-serif; color: var(--input-text, #ddd); }
.one4d-stage { position: relative; flex: 1 1 0; min-height: 0; overflow: hidden; border-radius: 4px;
  background: #1b1b1f; color: #ddd; }
.one4d-canvas { position: absolute; inset: 0; width: 100%; height: 100%; display: block; touch-action: none; }
.one4d-status { position: absolute; inset: 0; display: flex; flex-direction: column; align-items: center;
  justify-content: center; gap: 8px; padding: 12px; text-align: center; pointer-events: none; }
.one4d-status[hidden] { display: none; }
.one4d-status.error { color: #ffb4a9; background: rgba(32, 8, 8, 0.92); pointer-events: auto; user-select: text; }
.one4d-progress { width: 60%; height: 4px; background: rgba(255, 255, 255, 0.15); border-radius: 2px; overflow: hidden; }
.one4d-progress > div { height: 100%; width: 0%; background: #7f9cf5; }
.one4d-progress[hidden] { display: none; }
.one4d-controls { flex: none; display: flex; flex-direction: column; gap: 3px; padding-top: 4px; }
.one4d-row { display: flex; flex-wrap: wrap; align-items: center; gap: 3px 6px; min-width: 0; }
.one4d-row .one4d-frame { flex: 1 1 80px; min-width: 40px; margin: 0; }
.one4d-field { display: inline-flex; align-items: center; gap: 3px; white-space: nowrap; }
.one4d-controls input, .one4d-controls select, .one4d-controls button { font: inherit; color: inherit; margin: 0;
  background: var(--comfy-input-bg, #222); border: 1px solid var(--border-color, #444); border-radius: 3px; }
.one4d-controls input[type="checkbox"] { margin: 0; }
.one4d-controls input[type="number"] { width: 3em; }
.one4d-controls input.one4d-size { width: 48px; }
.one4d-controls button { padding: 1px 7px; cursor: pointer; }
`;

function injectStyle() {
  if (document.getElementById("one4d-preview-style")) return;
  const style = document.createElement("style");
  style.id = "one4d-preview-style";
  style.textContent = STYLE;
  document.head.append(style);
}

/** Owns one widget's element: status and progress, the payload download, the viewer. */
class PreviewController {
  constructor() {
    injectStyle();
    this.root = document.createElement("div");
    this.root.className = "one4d-preview";
    this.stage = document.createElement("div");
    this.stage.className = "one4d-stage";
    this.status = document.createElement("div");
    this.status.className = "one4d-status";
    this.message = document.createElement("div");
    this.progress = document.createElement("div");
    this.progress.className = "one4d-progress";
    this.progressBar = document.createElement("div");
    this.progress.append(this.progressBar);
    this.status.append(this.message, this.progress);
    this.stage.append(this.status);
    this.root.append(this.stage);
    this.viewer = null;
    this.abort = null;
    this.disposed = false;
    // Keep pointer, wheel and key events for the viewer: they must not drag or zoom the graph
    // canvas or trigger ComfyUI shortcuts while the user orbits or types a value.
    for (const type of ["pointerdown", "wheel", "keydown", "contextmenu"]) {
      this.root.addEventListener(type, (event) => event.stopPropagation());
    }
    this.setState("idle", "Run the workflow to see the 4D point cloud here.");
  }

  /** state: idle | loading | ready | error; shown to the user and exposed as data-state. */
  setState(state, text = "", progress = null) {
    this.root.dataset.state = state;
    this.status.hidden = state === "ready";
    this.status.classList.toggle("error", state === "error");
    this.message.textContent = text;
    this.progress.hidden = progress === null;
    if (progress !== null) this.progressBar.style.width = `${Math.round(progress * 100)}%`;
  }

  fail(message) {
    if (!this.disposed) this.setState("error", message);
  }

  /** Loads the payload named by one entry of the node's UI output. */
  async load(entry) {
    if (this.disposed) return;
    if (!entry || typeof entry.filename !== "string") {
      this.fail("The node returned no preview file to show (expected {filename, subfolder, type}).");
      return;
    }
    this.abort?.abort();
    const abort = new AbortController();
    this.abort = abort;
    const started = performance.now();
    const params = new URLSearchParams({
      filename: entry.filename,
      subfolder: entry.subfolder ?? "",
      type: entry.type ?? "temp",
      rand: String(Math.random()),  // the same name can hold a newer run's payload
    });
    const url = api.apiURL(`/view?${params}`);
    this.viewer?.pause();
    this.setState("loading", `Loading ${entry.filename}\u2026`, 0);
    try {
      const modules = await loadModules();
      let shown = 0;
      const buffer = await modules.payload.fetchPayload(url, {
        signal: abort.signal,
        onProgress: (loaded, total) => {
          if (this.abort !== abort || performance.now() - shown < 100) return;
          shown = performance.now();
          const mb = (loaded / 1e6).toFixed(1);
          const text = total ? `Loading ${entry.filename}: ${mb} of ${(total / 1e6).toFixed(1)} MB`
            : `Loading ${entry.filename}: ${mb} MB`;
          this.setState("loading", text, total ? loaded / total : 0);
        },
      });
      if (this.abort !== abort || this.disposed) return;
      this.root.dataset.fetchMs = String(Math.round(performance.now() - started));
      const payload = modules.payload.parsePayload(buffer);
      this.setState("loading", `Preparing ${payload.header.total_points.toLocaleString()} points\u2026`, 1);
      await new Promise((resolve) => requestAnimationFrame(resolve));  // let the message paint
      if (this.abort !== abort || this.disposed) return;
      this.viewer ??= new modules.viewer.PointCloudViewer({
        stage: this.stage, controlsHost: this.root, root: this.root, onError: (m) => this.fail(m),
      });
      this.viewer.setPayload(payload);
      this.root.dataset.loadMs = String(Math.round(performance.now() - started));
      this.root.dataset.source = entry.filename;
      this.setState("ready");
    } catch (err) {
      if (err && err.name === "AbortError") return;
      console.warn("[One4D] preview failed:", err);
      this.fail(err && err.message ? err.message : String(err));
    } finally {
      if (this.abort === abort) this.abort = null;
    }
  }

  dispose() {
    if (this.disposed) return;
    this.disposed = true;
    this.abort?.abort();
    this.viewer?.dispose();
    this.viewer = null;
  }
}

const controllers = new WeakMap();  // node -> PreviewController

/** Adds the preview widget to a node (once) and returns its controller. */
function attachPreview(node) {
  const existing = controllers.get(node);
  if (existing) return existing;
  const controller = new PreviewController();
  const widget = node.addDOMWidget(WIDGET_NAME, "one4d_preview", controller.root, {
    serialize: false,             // not part of the prompt sent to the server
    getValue: () => undefined,
    setValue: () => {},
    getMinHeight: () => MIN_HEIGHT,
  });
  widget.serialize = false;       // not part of the workflow's widgets_values
  const onRemove = widget.onRemove;
  widget.onRemove = function () {
    controller.dispose();
    controllers.delete(node);
    return onRemove?.apply(this, arguments);
  };
  controllers.set(node, controller);
  return controller;
}

app.registerExtension({
  name: EXTENSION_NAME,

  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!NODE_TYPES.has(nodeData?.name)) return;

    const onNodeCreated = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const result = onNodeCreated?.apply(this, arguments);
      attachPreview(this);
      // New nodes get room for the viewer; loaded workflows then restore their saved size.
      if (this.size && this.setSize) {
        this.setSize([Math.max(this.size[0], NEW_NODE_SIZE[0]), Math.max(this.size[1], NEW_NODE_SIZE[1])]);
      }
      return result;
    };

    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (output) {
      const result = onExecuted?.apply(this, arguments);
      const entries = output?.[UI_KEY];
      if (Array.isArray(entries) && entries.length > 0) {
        attachPreview(this).load(entries[0]);
      }
      return result;
    };
  },
});
