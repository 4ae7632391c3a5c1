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
//   assigns them in order to the widgets whose `serialize !== false`.

export class LGraphNode {
  constructor(type) {
    this.type = type;
    this.widgets = [];
    this.size = [300, 120];
    this.serialize_widgets = true;
    this.host = null;  // element standing in for the DOM widget overlay of the graph canvas
  }

  addWidget(type, name, value) {
    const widget = { type, name, value, options: {} };
    this.widgets.push(widget);
    return widget;
  }

  addDOMWidget(name, type, element, options = {}) {
    const node = this;
    const widget = {
      name,
      type,
      element,
      options: { hideOnZoom: true, ...options },
      get value() { return this.options.getValue?.() ?? ""; },
      set value(v) { this.options.setValue?.(v); },
      onRemove() { element.remove(); },
    };
    this.widgets.push(widget);
    this.host.append(element);
    const onRemoved = this.onRemoved;
    this.onRemoved = function () {
      onRemoved?.apply(this, arguments);
      for (const w of node.widgets) w.onRemove?.();
    };
    return widget;
  }

  setSize(size) {
    this.size = [size[0], size[1]];
    this.host.style.width = `${size[0]}px`;
    this.host.style.height = `${size[1]}px`;
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
    node.onNodeCreated?.();
    return node;
  },

  removeNode(node) {
    node.onRemoved?.();
    node.host.replaceChildren();
  },
};
