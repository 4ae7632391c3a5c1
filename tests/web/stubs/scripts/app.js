// Stand-in for ComfyUI frontend's scripts/app.js in the widget's browser test.
//
// It mimics the parts of the frontend (1.27 and later) the widget relies on:
// - app.registerExtension(ext) and the beforeRegisterNodeDef(nodeType, nodeData, app) hook;
// - node lifecycle: onNodeCreated after the node's own widgets exist, onExecuted(output) when a
//   run finishes, onRemoved (which calls each DOM widget's onRemove) when the node goes away;
// - LGraphNode.prototype.addDOMWidget(name, type, element, options) returning a widget whose value
//   comes from options.getValue, with options.hideOnZoom defaulting to true;
// - the two serialisation rules: a workflow's widgets_values skips widgets with
//   `widget.serialize === false` (keeping the other widgets' indices), and the prompt sent to
//   the server skips widgets with `widget.options.serialize === false`; loading widgets_values
//   assigns them in order to the widgets whose `serialize !== false`;
// - how the frontend sizes a DOM widget (measured on frontend 1.27.10 with the pack's Save 4D node):
//   the node's input/output slot row takes 26 px and each ordinary widget 24 px; the DOM widget
//   gets the rest of the node's height (its computedHeight), at least options.getMinHeight(), the
//   node growing to make room; its element is that box inset by a 10 px margin on every side
//   (a 320 px computedHeight gives a 300 px high element). Canvas zoom scales the element with a
//   CSS transform (transform-origin 0 0), so the layout inside it does not change with the zoom.
const SLOT_ROW = 26;
const WIDGET_ROW = 24;
const DOM_MARGIN = 10;

export class LGraphNode {
  constructor(type) {
    this.type = type;
    this.widgets = [];
    this.size = [300, 120];
    this.serialize_widgets = true;
    this.host = null;  // element standing in for the node's body on the graph canvas
  }

  addWidget(type, name, value) {
    const widget = { type, name, value, options: {} };
    this.widgets.push(widget);
    return widget;
  }

  addDOMWidget(name, type, element, options = {}) {
    const node = this;
    const box = document.createElement("div");  // the frontend's .dom-widget element
    box.className = "dom-widget";
    box.style.position = "absolute";
    box.append(element);
    const widget = {
      name,
      type,
      element,
      box,
      options: { hideOnZoom: true, ...options },
      get value() { return this.options.getValue?.() ?? ""; },
      set value(v) { this.options.setValue?.(v); },
      onRemove() { box.remove(); },
    };
    this.widgets.push(widget);
    this.host.append(box);
    const onRemoved = this.onRemoved;
    this.onRemoved = function () {
      onRemoved?.apply(this, arguments);
      for (const w of node.widgets) w.onRemove?.();
    };
    this.layout();
    return widget;
  }

  /** Draws the ordinary widgets as rows and places the DOM widgets below them (see the header). */
  layout() {
    if (!this.host) return;
    let rows = this.host.querySelector(":scope > .stub-widgets");
    if (!rows) {
      rows = document.createElement("div");
      rows.className = "stub-widgets";
      this.host.prepend(rows);
    }
    const ordinary = this.widgets.filter((w) => !w.box);
    rows.replaceChildren(...ordinary.map((w) => {
      const row = document.createElement("div");
      row.className = "stub-widget";
      row.textContent = `${w.name}: ${w.value}`;
      return row;
    }));
    let y = SLOT_ROW + WIDGET_ROW * ordinary.length;
    for (const w of this.widgets.filter((x) => x.box)) {
      const min = Number(w.options.getMinHeight?.() ?? 50);
      if (this.size[1] < y + min) this.size[1] = y + min;  // the node grows to make room
      const height = this.size[1] - y;
      w.computedHeight = height;
      Object.assign(w.box.style, {
        left: `${DOM_MARGIN}px`, top: `${y + DOM_MARGIN}px`,
        width: `${this.size[0] - 2 * DOM_MARGIN}px`, height: `${height - 2 * DOM_MARGIN}px`,
      });
      y += height;
    }
    this.host.style.width = `${this.size[0]}px`;
    this.host.style.height = `${this.size[1]}px`;
  }

  setSize(size) {
    this.size = [size[0], size[1]];
    this.layout();
    this.onResize?.(this.size);
  }

  serialize() {
    const widgets_values = [];
    for (const [i, widget] of this.widgets.entries()) {
      if (widget.serialize === false) continue;
      widgets_values[i] = widget.value;
    }
    return { type: this.type, size: [...this.size], widgets_values };
  }

  configure(info) {
    this.setSize(info.size);
    const withValue = this.widgets.filter((w) => w.serialize !== false);
    info.widgets_values.forEach((value, i) => { if (withValue[i]) withValue[i].value = value; });
    this.layout();
  }

  promptInputs() {
    const inputs = {};
    for (const widget of this.widgets) {
      if (!widget.name || widget.options?.serialize === false) continue;
      inputs[widget.name] = widget.value;
    }
    return inputs;
  }
}

export const app = {
  extensions: [],
  nodeTypes: {},

  registerExtension(extension) {
    if (!extension || !extension.name) throw new Error("registerExtension needs an object with a name");
    this.extensions.push(extension);
  },

  /** Like the frontend's registerNodeDef: builds the node class, then runs the extension hooks. */
  async registerNodeDef(name, widgetSpecs = []) {
    const nodeType = class extends LGraphNode {
      constructor() {
        super(name);
        for (const [type, widgetName, value] of widgetSpecs) this.addWidget(type, widgetName, value);
      }
    };
    for (const extension of this.extensions) {
      await extension.beforeRegisterNodeDef?.(nodeType, { name }, this);
    }
    this.nodeTypes[name] = nodeType;
    return nodeType;
  },

  createNode(name, host) {
    const nodeType = this.nodeTypes[name];
    const node = new nodeType();
    node.host = host;
    node.layout();
    node.onNodeCreated?.();
    return node;
  },

  removeNode(node) {
    node.onRemoved?.();
    node.host.replaceChildren();
  },

  /** Canvas zoom: the frontend scales each DOM widget's element with a CSS transform. */
  setZoom(node, scale) {
    node.host.style.transformOrigin = "0 0";
    node.host.style.transform = `scale(${scale})`;
  },
};
