// The WebGL viewer of the 4D preview widget: a point cloud per frame, playback, colour modes,
// camera frustums and trajectory, orbit / pan / zoom. Loaded on demand by one4d_preview.js the
// first time a payload arrives, so three.js costs nothing on pages that never show a preview.
//
// Design:
// - All frames live in one BufferGeometry (positions as float16 x4, colours as uint8 x4, straight
//   from the payload); a frame is a draw range. Switching frames or the point budget uploads nothing:
//   the payload stores each frame's points in a shuffled order, so its first k points are a
//   uniform subsample and the budget is just a shorter draw range.
// - Points stay in the payload's OpenCV coordinates (x right, y down, z forward, world = camera
//   of frame 0); one parent group turns them into three.js axes (y up, z backwards), a rotation
//   by 180 degrees about x. Depth and height colours are computed in the vertex shader from
//   per-frame uniforms, so changing the colour mode costs nothing either.
// - Rendering is on demand (after an interaction, a frame change or a resize), plus one frame
//   per display refresh while playing.
// - Readable defaults, decided from a small uniform sample of frame 0 (the first points of the
//   frame, see the payload's "shuffled" order), never from a scan of the data:
//   * the point size follows the density on screen: the spacing of the drawn points, estimated
//     from the distance between neighbouring sample points, so that the surfaces look closed;
//     moving the size slider switches that off;
//   * the background ("auto") is light or dark, whichever more of the points stand out against
//     (a contrast ratio of at least 3:1); it can be set by hand (light, grey, dark) and the choice
//     is remembered in the browser;
//   * the first view ("Fit") looks from behind the first camera and above it (or turned to a
//     side), the first of a few such views in which the cameras' frustums and path land nowhere on
//     the cloud in the picture, else the one where they cover the least of it; frustums are sized
//     from the scene extent and kept short of the nearest points.
// - three.js comes from one4d_three.mjs: the page's copy where the page exposes one, else the
//   vendored copy.
import { THREE, THREE_SOURCE } from "./one4d_three.mjs";
import { OrbitControls } from "../vendor/three/OrbitControls.mjs";

const COLOR_MODES = { rgb: 0, depth: 1, height: 2 };
const BUDGET_CHOICES = [5_000, 10_000, 25_000, 50_000, 100_000, 200_000, 500_000];
// Without a GPU (software WebGL) the draw rate is about a million points a second: start with a
// budget that keeps playback fluid there; the user can still pick "all".
const SOFTWARE_BUDGET = 50_000;
const SAMPLE_POINTS = 2_000;        // frame-0 points the defaults are decided from
const POINT_SIZE_RANGE = [1, 8];    // pixels, the size slider's range
const FILL_FACTOR = 1.4;            // point size / spacing of the drawn points on screen
// Median nearest-neighbour distance of uniformly scattered points, in units of 1 / sqrt(density):
// sqrt(ln 2 / pi). Turns the sample's median neighbour distance into the points' spacing.
const MEDIAN_NEIGHBOUR = Math.sqrt(Math.LN2 / Math.PI);
// Backgrounds: clear colour and the overlay colours that read on it.
export const BACKGROUNDS = {
  light: { clear: 0xf2f2f4, frustum: 0x4f6fd8, current: 0xd9480f, path: 0x2b2b33 },
  grey: { clear: 0x8a8a90, frustum: 0x1f3f9f, current: 0xffd43b, path: 0xf8f8f8 },
  dark: { clear: 0x1b1b1f, frustum: 0x7f9cf5, current: 0xffa53d, path: 0xe5e5e5 },
};
const BACKGROUND_KEY = "one4d.preview.background";
const MIN_CONTRAST = 3;             // WCAG's ratio for graphical objects
// First views tried by fit(), in order of preference: [elevation, azimuth] in degrees from the frame-0
// camera's axis, straight behind it at rising elevations, then turned to either side.
const VIEWS = [
  ...[15, 20, 25, 30, 35, 40, 45, 50, 55, 60].map((e) => [e, 0]),
  ...[25, 40, 55].flatMap((e) => [[e, -35], [e, 35]]),
];
const DEFAULT_VIEW = [30, 0];
const OCCUPANCY_GRID = 40;          // cells per side of the picture when measuring what hides the cloud

/** Relative luminance (WCAG) of an sRGB colour with components in 0..1. */
export function luminance(r, g, b) {
  const lin = (c) => (c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio of two relative luminances (1 to 21). */
export function contrastRatio(a, b) {
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}

function hexLuminance(hex) {
  return luminance(((hex >> 16) & 255) / 255, ((hex >> 8) & 255) / 255, (hex & 255) / 255);
}

/** "light" or "dark": the background that more of the given point luminances reach 3:1 against
 * (ties go to the one with the larger median contrast). */
export function autoBackground(luminances) {
  if (!luminances.length) return "dark";
  const sorted = [...luminances].sort((a, b) => a - b);
  const median = sorted[sorted.length >> 1];
  const score = (name) => {
    const bg = hexLuminance(BACKGROUNDS[name].clear);
    const readable = sorted.filter((l) => contrastRatio(l, bg) >= MIN_CONTRAST).length;
    return [readable, contrastRatio(median, bg)];
  };
  const [light, dark] = [score("light"), score("dark")];
  return light[0] > dark[0] || (light[0] === dark[0] && light[1] > dark[1]) ? "light" : "dark";
}

function readStoredBackground() {
  try {
    const value = window.localStorage?.getItem(BACKGROUND_KEY);
    return value === "auto" || Object.hasOwn(BACKGROUNDS, value) ? value : "auto";
  } catch {
    return "auto";  // storage disabled
  }
}

function storeBackground(value) {
  try {
    window.localStorage?.setItem(BACKGROUND_KEY, value);
  } catch {
    // storage disabled: the choice lasts for this page
  }
}

const VERTEX_SHADER = /* glsl */ `
attribute vec4 rgb;
uniform float uPointSize;
uniform int uColorMode;      // 0 rgb, 1 depth to the frame's camera, 2 height (-y of frame 0)
uniform vec2 uRange;         // value range mapped onto the colour ramp
uniform vec3 uCamCenter;     // camera of the current frame, OpenCV world coordinates
uniform vec3 uCamForward;
varying vec3 vColor;

// Blue, cyan, green, yellow, red: a perceptually ordered ramp for scalar values.
vec3 ramp(float t) {
  vec3 c0 = vec3(0.18, 0.20, 0.75);
  vec3 c1 = vec3(0.10, 0.65, 0.90);
  vec3 c2 = vec3(0.25, 0.80, 0.35);
  vec3 c3 = vec3(0.98, 0.82, 0.20);
  vec3 c4 = vec3(0.85, 0.15, 0.12);
  float s = clamp(t, 0.0, 1.0) * 4.0;
  if (s < 1.0) return mix(c0, c1, s);
  if (s < 2.0) return mix(c1, c2, s - 1.0);
  if (s < 3.0) return mix(c2, c3, s - 2.0);
  return mix(c3, c4, s - 3.0);
}

void main() {
  if (uColorMode == 0) {
    vColor = rgb.rgb;
  } else {
    float value = uColorMode == 1 ? dot(position - uCamCenter, uCamForward) : -position.y;
    vColor = ramp((value - uRange.x) / (uRange.y - uRange.x));
  }
  gl_Position = projectionMatrix * modelViewMatrix * vec4(position, 1.0);
  gl_PointSize = uPointSize;
}
`;

const FRAGMENT_SHADER = /* glsl */ `
uniform bool uRound;
varying vec3 vColor;
void main() {
  vec2 d = gl_PointCoord - 0.5;
  if (uRound && dot(d, d) > 0.25) discard;
  gl_FragColor = vec4(vColor, 1.0);  // colours are sRGB already: written as they are
}
`;

/** Creates an element from a tag, properties and children. */
function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  for (const child of children) node.append(child);
  return node;
}

/** True for software WebGL (SwiftShader, llvmpipe, ...), where every point costs CPU time. */
function isSoftwareRenderer(gl) {
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const name = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
  return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(name);
}

function formatCount(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e7 ? 0 : 1)}M`;
  if (n >= 1e3) return `${Math.round(n / 1e3)}k`;
  return String(n);
}

export class PointCloudViewer {
  /**
   * @param {HTMLElement} stage element the canvas fills (its size drives the canvas size)
   * @param {HTMLElement} controlsHost element that receives the control bar
   * @param {HTMLElement} root element whose data-* attributes expose the view state
   * @param {(message: string) => void} onError called when rendering fails for good
   */
  constructor({ stage, controlsHost, root, onError }) {
    this.stage = stage;
    this.root = root;
    this.onError = onError;
    this.payload = null;
    this.sample = null;
    this.frame = 0;
    this.playing = false;
    this.fps = 8;
    this.budget = Infinity;
    this.colorMode = "rgb";
    this.pointSize = 2;
    this.autoSize = true;               // until the user moves the size slider
    this.background = readStoredBackground();
    this.autoBackgroundName = "dark";
    this.renders = 0;
    this._raf = null;
    this._lastTick = null;
    this._elapsed = 0;
    this._disposed = false;
    this._sceneObjects = [];
    this._frustumVertices = [];
    this._overlaySegments = [];
    root.dataset.three = THREE_SOURCE;

    const canvas = el("canvas", { className: "one4d-canvas" });
    try {
      this.renderer = new THREE.WebGLRenderer({ canvas, antialias: false, powerPreference: "high-performance" });
    } catch (err) {
      throw new Error(`WebGL 2 is not available in this browser, so the 4D preview cannot be drawn (${err.message || err}).`);
    }
    this.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
    this.software = isSoftwareRenderer(this.renderer.getContext());
    if (this.software) this.budget = SOFTWARE_BUDGET;
    root.dataset.software = String(this.software);
    canvas.addEventListener("webglcontextlost", (event) => {
      event.preventDefault();
      this.pause();
      this.onError("The browser dropped this preview's WebGL context (GPU reset, or too many 3D views open). Run the workflow again to reload it.");
    });
    stage.prepend(canvas);
    this.canvas = canvas;

    this.scene = new THREE.Scene();
    this.world = new THREE.Group();           // OpenCV -> three.js axes
    this.world.rotation.x = Math.PI;
    this.scene.add(this.world);
    this.camera = new THREE.PerspectiveCamera(50, 1, 0.01, 1000);
    this.controls = new OrbitControls(this.camera, canvas);
    this.controls.addEventListener("change", () => this.requestRender());

    this.material = new THREE.ShaderMaterial({
      vertexShader: VERTEX_SHADER,
      fragmentShader: FRAGMENT_SHADER,
      uniforms: {
        uPointSize: { value: 2 },
        uColorMode: { value: 0 },
        uRange: { value: new THREE.Vector2(0, 1) },
        uCamCenter: { value: new THREE.Vector3() },
        uCamForward: { value: new THREE.Vector3(0, 0, 1) },
        uRound: { value: false },
      },
    });

    this._buildControls(controlsHost);
    this._applyBackground();
    this._resizeObserver = new ResizeObserver(() => this.resize());
    this._resizeObserver.observe(stage);
    this.resize();
  }

  // ------------------------------------------------------------------------------ data

  /** Shows a parsed payload (see one4d_payload.mjs). Fits the view on the first one. */
  setPayload(payload) {
    const firstPayload = this.payload === null;
    this._clearScene();
    this.payload = payload;
    const { header, positions, colors } = payload;
    const total = header.total_points;
    this.sample = this._sampleFrame0(payload);  // read from the payload's own arrays, not the GPU attributes'

    const geometry = new THREE.BufferGeometry();
    // Four components (x y z 1, r g b 255): formats every GPU API takes without conversion.
    const position = new THREE.Float16BufferAttribute(positions, 4);
    const rgb = new THREE.BufferAttribute(colors, 4, true);
    for (const attribute of [position, rgb]) {
      attribute.onUpload(function releaseCpuCopy() { this.array = null; });
    }
    geometry.setAttribute("position", position);
    geometry.setAttribute("rgb", rgb);
    // Known bounds: three.js would otherwise scan every point to compute them.
    const { min, max } = header.bbox;
    geometry.boundingBox = new THREE.Box3(new THREE.Vector3(...min), new THREE.Vector3(...max));
    geometry.boundingSphere = geometry.boundingBox.getBoundingSphere(new THREE.Sphere());
    this.points = new THREE.Points(geometry, this.material);
    this.points.frustumCulled = false;
    this.world.add(this.points);
    this._sceneObjects.push(this.points);

    this.cameras = this._readCameras(payload);
    this._buildCameraOverlays();

    this.autoBackgroundName = autoBackground(this.sample.luminance);
    this._applyBackground();
    this.frame = Math.min(this.frame, payload.frames - 1);
    this.fps = header.fps || 8;
    this._syncControls(total);
    if (firstPayload) this.fit();
    else this._updateAutoPointSize();
    this.setFrame(this.frame);
  }

  /** Up to SAMPLE_POINTS points of frame 0 (a uniform subsample: the payload's frames are shuffled):
   * OpenCV positions [n*3] and the relative luminance of their colours. */
  _sampleFrame0({ positions, colors, offsets, counts }) {
    const n = Math.min(counts[0] || 0, SAMPLE_POINTS);
    const start = offsets[0] || 0;
    const points = new Float32Array(n * 3);
    const lum = new Float32Array(n);
    const half = THREE.DataUtils.fromHalfFloat;
    for (let i = 0; i < n; i++) {
      const j = (start + i) * 4;
      points[3 * i] = half(positions[j]);
      points[3 * i + 1] = half(positions[j + 1]);
      points[3 * i + 2] = half(positions[j + 2]);
      lum[i] = luminance(colors[j] / 255, colors[j + 1] / 255, colors[j + 2] / 255);
    }
    return { count: n, points, luminance: Array.from(lum) };
  }

  _readCameras({ frames, K, c2w, header }) {
    if (!c2w) return null;
    const [height, width] = header.image_size;
    const cams = [];
    for (let t = 0; t < frames; t++) {
      const m = c2w.subarray(t * 16, t * 16 + 16);  // row-major camera-to-world, OpenCV
      const k = K ? K.subarray(t * 9, t * 9 + 9) : null;
      const fx = k ? k[0] : width / (2 * Math.tan(Math.PI / 6));
      const fy = k ? k[4] : fx;
      const cx = k ? k[2] : width / 2;
      const cy = k ? k[5] : height / 2;
      cams.push({
        center: new THREE.Vector3(m[3], m[7], m[11]),
        forward: new THREE.Vector3(m[2], m[6], m[10]).normalize(),
        toWorld: (x, y, z) => new THREE.Vector3(
          m[0] * x + m[1] * y + m[2] * z + m[3],
          m[4] * x + m[5] * y + m[6] * z + m[7],
          m[8] * x + m[9] * y + m[10] * z + m[11]),
        corners: [[0, 0], [width, 0], [width, height], [0, height]].map(([u, v]) => [(u - cx) / fx, (v - cy) / fy]),
      });
    }
    return cams;
  }

  /** Length of the frustums: 5% of the robust scene diagonal, at most half the distance from the
   * first camera to its nearest points (5th percentile of the sample's depth), so that they stay
   * in front of the cloud. */
  _frustumDepth() {
    const { min, max } = this.payload.header.bbox_robust;
    const diagonal = Math.hypot(max[0] - min[0], max[1] - min[1], max[2] - min[2]) || 1;
    let depth = 0.05 * diagonal;
    const cam = this.cameras[0];
    const { points, count } = this.sample;
    if (count > 0) {
      const depths = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        depths[i] = (points[3 * i] - cam.center.x) * cam.forward.x + (points[3 * i + 1] - cam.center.y) * cam.forward.y
          + (points[3 * i + 2] - cam.center.z) * cam.forward.z;
      }
      depths.sort();
      const near = depths[Math.floor(0.05 * (count - 1))];
      if (near > 0) depth = Math.min(depth, 0.5 * near);
    }
    return depth;
  }

  _buildCameraOverlays() {
    this.frustums = this.currentFrustum = this.trajectory = null;
    this._frustumVertices = [];
    this._overlaySegments = [];
    if (!this.cameras) return;
    const depth = this._frustumDepth();
    const vertices = [];
    for (const cam of this.cameras) {
      const apex = cam.center;
      const corners = cam.corners.map(([x, y]) => cam.toWorld(x * depth, y * depth, depth));
      for (let i = 0; i < 4; i++) {
        vertices.push(apex, corners[i], corners[i], corners[(i + 1) % 4]);
      }
      this._frustumVertices.push(apex, ...corners);
    }
    for (let i = 0; i < vertices.length; i += 2) this._overlaySegments.push([vertices[i], vertices[i + 1]]);
    for (let t = 1; t < this.cameras.length; t++) this._overlaySegments.push([this.cameras[t - 1].center, this.cameras[t].center]);
    const all = new THREE.BufferGeometry().setFromPoints(vertices);
    // The current frame's frustum: the same vertices, its own draw range (set by setFrame).
    const current = new THREE.BufferGeometry();
    current.setAttribute("position", all.getAttribute("position"));
    this.frustums = new THREE.LineSegments(all, new THREE.LineBasicMaterial({ transparent: true, opacity: 0.45 }));
    this.currentFrustum = new THREE.LineSegments(current, new THREE.LineBasicMaterial());
    this.trajectory = new THREE.Line(
      new THREE.BufferGeometry().setFromPoints(this.cameras.map((c) => c.center)),
      new THREE.LineBasicMaterial());
    for (const object of [this.frustums, this.currentFrustum, this.trajectory]) {
      this.world.add(object);
      this._sceneObjects.push(object);
    }
    this.frustums.visible = this.currentFrustum.visible = this.ui.cameras.checked;
    this.trajectory.visible = this.ui.trajectory.checked;
  }

  _clearScene() {
    for (const object of this._sceneObjects) {
      this.world.remove(object);
      object.geometry.dispose();
      if (object.material !== this.material) object.material.dispose();
    }
    this._sceneObjects = [];
    this.points = null;
  }

  // ------------------------------------------------------------------------------ view state

  setFrame(index) {
    if (!this.payload) return;
    const frames = this.payload.frames;
    this.frame = ((Math.round(index) % frames) + frames) % frames;
    const count = Math.min(this.payload.counts[this.frame], this.budget);
    this.points.geometry.setDrawRange(this.payload.offsets[this.frame], count);
    const cam = this.cameras ? this.cameras[this.frame] : null;
    this.material.uniforms.uCamCenter.value.copy(cam ? cam.center : new THREE.Vector3());
    this.material.uniforms.uCamForward.value.copy(cam ? cam.forward : new THREE.Vector3(0, 0, 1));
    if (this.currentFrustum) this.currentFrustum.geometry.setDrawRange(this.frame * 16, 16);
    this.ui.slider.value = String(this.frame);
    this.ui.frameLabel.textContent = `${this.frame + 1} / ${frames}`;
    Object.assign(this.root.dataset, { frame: String(this.frame), points: String(count) });
    this.requestRender();
  }

  setColorMode(mode) {
    if (!Object.hasOwn(COLOR_MODES, mode)) return;
    this.colorMode = mode;
    const header = this.payload ? this.payload.header : null;
    const range = header ? (mode === "depth" ? header.depth_range : mode === "height" ? header.height_range : [0, 1]) : [0, 1];
    this.material.uniforms.uColorMode.value = COLOR_MODES[mode];
    this.material.uniforms.uRange.value.set(range[0], range[1] > range[0] ? range[1] : range[0] + 1e-6);
    this.ui.color.value = mode;
    this.root.dataset.colorMode = mode;
    this.requestRender();
  }

  /** Point size in CSS pixels, set by hand (the automatic size stops following the density). */
  setPointSize(pixels) {
    this.autoSize = false;
    this._setPointSize(pixels);
  }

  _setPointSize(pixels) {
    this.pointSize = Math.min(Math.max(Number(pixels) || 1, 0.5), POINT_SIZE_RANGE[1]);
    this.material.uniforms.uPointSize.value = this.pointSize * this.renderer.getPixelRatio();
    this.material.uniforms.uRound.value = this.pointSize > 2.5;
    this.ui.size.value = String(this.pointSize);
    this.ui.size.title = `Point size: ${this.pointSize} px` + (this.autoSize ? " (automatic, from the point density; move to set it)" : "");
    Object.assign(this.root.dataset, { pointSize: String(this.pointSize), pointSizeAuto: String(this.autoSize) });
    this.requestRender();
  }

  /** The automatic point size: FILL_FACTOR times the spacing of frame 0's points on screen, as
   * drawn (all of them, or the budget), so that surfaces look closed. The spacing comes from the
   * median distance between neighbouring sample points, scaled from the sample's density to the
   * drawn points' (1 / sqrt(density) for scattered points). */
  _updateAutoPointSize() {
    if (!this.autoSize || !this.sample || !this.payload) return;
    const width = this.canvas.clientWidth, height = this.canvas.clientHeight;
    const { points, count } = this.sample;
    if (count < 2 || width < 1 || height < 1) return;
    this.world.updateMatrixWorld();
    this.camera.updateMatrixWorld();
    const v = new THREE.Vector3();
    const xs = [], ys = [];
    const used = Math.min(count, 1000);  // enough for a median; keeps this O(n^2) search ~1 ms
    for (let i = 0; i < used; i++) {
      v.set(points[3 * i], points[3 * i + 1], points[3 * i + 2]).applyMatrix4(this.world.matrixWorld).project(this.camera);
      if (v.z < -1 || v.z > 1 || Math.abs(v.x) > 1 || Math.abs(v.y) > 1) continue;
      xs.push((v.x + 1) * width / 2);
      ys.push((1 - v.y) * height / 2);
    }
    const n = xs.length;
    if (n < 2) return;
    const nearest = new Float32Array(n).fill(Infinity);
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        const d = (xs[i] - xs[j]) ** 2 + (ys[i] - ys[j]) ** 2;
        if (d < nearest[i]) nearest[i] = d;
        if (d < nearest[j]) nearest[j] = d;
      }
    }
    nearest.sort();
    const median = Math.sqrt(nearest[n >> 1]);
    const drawn = Math.min(this.payload.counts[0], this.budget);
    const spacing = median * Math.sqrt(used / Math.max(drawn, 1)) / MEDIAN_NEIGHBOUR;
    const size = Math.round(2 * FILL_FACTOR * spacing) / 2;
    this._setPointSize(Math.min(Math.max(size, POINT_SIZE_RANGE[0]), POINT_SIZE_RANGE[1]));
  }

  setBudget(pointsPerFrame) {
    this.budget = pointsPerFrame > 0 ? pointsPerFrame : Infinity;
    this.setFrame(this.frame);
    this._updateAutoPointSize();
  }

  setFps(fps) {
    this.fps = Math.min(Math.max(Number(fps) || 1, 0.1), 240);
  }

  /** "auto" (light or dark from the points' colours), "light", "grey" or "dark"; remembered. */
  setBackground(choice) {
    if (choice !== "auto" && !Object.hasOwn(BACKGROUNDS, choice)) return;
    this.background = choice;
    storeBackground(choice);
    this._applyBackground();
  }

  _applyBackground() {
    const name = this.background === "auto" ? this.autoBackgroundName : this.background;
    const palette = BACKGROUNDS[name];
    this.renderer.setClearColor(palette.clear, 1);
    if (this.frustums) {
      this.frustums.material.color.setHex(palette.frustum);
      this.currentFrustum.material.color.setHex(palette.current);
      this.trajectory.material.color.setHex(palette.path);
    }
    this.ui.background.value = this.background;
    this.ui.autoOption.textContent = `auto (${name})`;
    this.ui.autoOption.label = this.ui.autoOption.textContent;
    this.root.dataset.background = name;
    this.root.dataset.backgroundChoice = this.background;
    this.requestRender();
  }

  setShowCameras(show) {
    if (this.frustums) this.frustums.visible = this.currentFrustum.visible = show;
    this.requestRender();
  }

  setShowTrajectory(show) {
    if (this.trajectory) this.trajectory.visible = show;
    this.requestRender();
  }

  play() {
    if (!this.payload || this.playing) return;
    this.playing = true;
    this._lastTick = null;
    this._elapsed = 0;
    this.ui.play.textContent = "\u275A\u275A";
    this.ui.play.title = "Pause";
    this.requestRender();
  }

  pause() {
    this.playing = false;
    if (this.ui) {
      this.ui.play.textContent = "\u25B6";
      this.ui.play.title = "Play";
    }
  }

  /** The first view: from behind the frame-0 camera and above it, framing the cloud and the cameras.
   * Of VIEWS it takes the first in which the camera frustums and path hide none of the cloud (none of
   * their points lands on the cloud's footprint in the picture), else the one in which they hide the
   * least of it. */
  fit() {
    if (!this.payload) return;
    const toThree = (p) => new THREE.Vector3(p.x, -p.y, -p.z);  // the world group's rotation
    const { points, count } = this.sample;
    const cloud = [];
    for (let i = 0; i < count; i++) cloud.push(new THREE.Vector3(points[3 * i], -points[3 * i + 1], -points[3 * i + 2]));
    const corners = this._frustumVertices.map(toThree);
    const probes = [];  // points along every frustum edge and path segment
    for (const [a, b] of this._overlaySegments) {
      for (const t of [0, 0.25, 0.5, 0.75, 1]) probes.push(toThree(new THREE.Vector3().lerpVectors(a, b, t)));
    }
    const { min, max } = this.payload.header.bbox_robust;
    const lo = new THREE.Vector3(...min), hi = new THREE.Vector3(...max);
    const box = new THREE.Box3().setFromPoints([toThree(lo), toThree(hi), ...corners]);
    const center = box.getCenter(new THREE.Vector3());
    const radius = Math.max(box.getSize(new THREE.Vector3()).length() / 2, 1e-3);
    const framed = [...cloud, ...corners];
    if (framed.length === 0) framed.push(toThree(lo), toThree(hi));

    let best = null;
    for (const view of probes.length ? VIEWS : [DEFAULT_VIEW]) {
      this._placeCamera(center, view, framed, radius);
      const hidden = probes.length && cloud.length ? this._hiddenShare(probes, cloud) : 0;
      if (best === null || hidden < best.hidden) best = { view, hidden };
      if (hidden === 0) break;
    }
    this._placeCamera(center, best.view, framed, radius);
    Object.assign(this.root.dataset, {
      elevation: String(best.view[0]), azimuth: String(best.view[1]), overlayOnCloud: best.hidden.toFixed(3),
    });
    this.controls.target.copy(center);
    this.controls.update();
    this._updateAutoPointSize();
    this.requestRender();
  }

  /** Puts the camera on the sphere around `center` in the direction [elevation, azimuth] (degrees,
   * from the frame-0 camera's axis), just far enough for every point of `framed` to fit in 90% of the
   * view. */
  _placeCamera(center, [elevationDeg, azimuthDeg], framed, radius) {
    const elevation = THREE.MathUtils.degToRad(elevationDeg);
    const azimuth = THREE.MathUtils.degToRad(azimuthDeg);
    const direction = new THREE.Vector3(Math.sin(azimuth) * Math.cos(elevation), Math.sin(elevation),
      Math.cos(azimuth) * Math.cos(elevation));  // from the target to the eye
    const tanY = Math.tan(THREE.MathUtils.degToRad(this.camera.fov) / 2);
    const tanX = tanY * this.camera.aspect;
    this.camera.up.set(0, 1, 0);
    this.camera.position.copy(center).addScaledVector(direction, radius);
    this.camera.lookAt(center);
    this.camera.updateMatrixWorld();
    // Moving the eye back along its axis by d keeps view-space x, y and adds d to every depth.
    const inverse = this.camera.matrixWorldInverse;
    const v = new THREE.Vector3();
    let back = -Infinity;
    for (const p of framed) {
      v.copy(p).applyMatrix4(inverse);
      const depth = -v.z;
      back = Math.max(back, Math.abs(v.x) / (0.9 * tanX) - depth, Math.abs(v.y) / (0.9 * tanY) - depth);
    }
    const distance = radius + Math.max(back, -0.9 * radius);
    this.camera.position.copy(center).addScaledVector(direction, distance);
    this.camera.near = radius / 1000;
    this.camera.far = (distance + radius) * 50;
    this.camera.updateProjectionMatrix();
    this.camera.lookAt(center);
    this.camera.updateMatrixWorld();
  }

  /** Share of the overlay probe points that land on the cloud's footprint in the picture: the cells of
   * an OCCUPANCY_GRID x OCCUPANCY_GRID grid that cloud sample points fall in, grown by one cell. */
  _hiddenShare(probes, cloud) {
    const n = OCCUPANCY_GRID;
    const cells = new Uint8Array(n * n);
    const v = new THREE.Vector3();
    const cellOf = (p) => {
      v.copy(p).project(this.camera);
      if (v.z < -1 || v.z > 1 || Math.abs(v.x) > 1 || Math.abs(v.y) > 1) return null;
      return [Math.min(n - 1, Math.floor((v.x + 1) / 2 * n)), Math.min(n - 1, Math.floor((v.y + 1) / 2 * n))];
    };
    for (const p of cloud) {
      const cell = cellOf(p);
      if (!cell) continue;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const x = cell[0] + dx, y = cell[1] + dy;
          if (x >= 0 && x < n && y >= 0 && y < n) cells[y * n + x] = 1;
        }
      }
    }
    let hidden = 0;
    for (const p of probes) {
      const cell = cellOf(p);
      if (cell && cells[cell[1] * n + cell[0]]) hidden += 1;
    }
    return hidden / probes.length;
  }

  resize() {
    const width = Math.floor(this.stage.clientWidth);
    const height = Math.floor(this.stage.clientHeight);
    if (width < 1 || height < 1) return;  // hidden (collapsed node, zoomed-out canvas)
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
    this._updateAutoPointSize();
    this.requestRender();
  }

  // ------------------------------------------------------------------------------ rendering

  requestRender() {
    if (this._raf === null && !this._disposed) {
      this._raf = requestAnimationFrame((now) => this._tick(now));
    }
  }

  _tick(now) {
    this._raf = null;
    if (this._disposed) return;
    if (this.playing && this.payload) {
      if (this._lastTick !== null) {
        // Advance by wall-clock time; after a long stall (hidden tab) move on by one frame only.
        const frameMs = 1000 / this.fps;
        this._elapsed += now - this._lastTick;
        if (this._elapsed > 1000) this._elapsed = frameMs;
        const steps = Math.floor(this._elapsed / frameMs);
        if (steps > 0) {
          this._elapsed -= steps * frameMs;
          this.setFrame(this.frame + steps);
        }
      }
      this._lastTick = now;
      this.requestRender();
    }
    try {
      this.renderer.render(this.scene, this.camera);
      this.renders += 1;
      this.root.dataset.renders = String(this.renders);
    } catch (err) {
      this.pause();
      this.onError(`Drawing the preview failed: ${err.message || err}`);
    }
  }

  dispose() {
    if (this._disposed) return;
    this._disposed = true;
    this.playing = false;
    if (this._raf !== null) cancelAnimationFrame(this._raf);
    this._resizeObserver.disconnect();
    this.controls.dispose();
    this._clearScene();
    this.material.dispose();
    this.renderer.dispose();
    this.renderer.forceContextLoss();
    this.canvas.remove();
    this.ui.bar.remove();
  }

  // ------------------------------------------------------------------------------ controls

  _buildControls(host) {
    const play = el("button", { className: "one4d-play", textContent: "\u25B6", title: "Play" });
    const slider = el("input", { className: "one4d-frame", type: "range", min: "0", max: "0", step: "1", value: "0", title: "Frame" });
    const frameLabel = el("span", { className: "one4d-frame-label", textContent: "0 / 0" });
    const fit = el("button", { className: "one4d-fit", textContent: "Fit", title: "Show the whole point cloud and the cameras again" });
    const color = el("select", { className: "one4d-color", title: "Colour points by" }, [
      el("option", { value: "rgb", textContent: "RGB" }),
      el("option", { value: "depth", textContent: "depth" }),
      el("option", { value: "height", textContent: "height" }),
    ]);
    const budget = el("select", { className: "one4d-budget", title: "Points drawn per frame (a uniform subsample)" +
      (this.software ? ". This browser renders WebGL without a GPU: fewer points keep playback smooth." : "") });
    const size = el("input", { className: "one4d-size", type: "range", min: String(POINT_SIZE_RANGE[0]),
      max: String(POINT_SIZE_RANGE[1]), step: "0.5", value: "2" });
    const fps = el("input", { className: "one4d-fps", type: "number", min: "1", max: "60", step: "1", value: "8", title: "Playback speed (frames per second)" });
    const autoOption = el("option", { value: "auto", textContent: "auto" });
    const background = el("select", { className: "one4d-background", title: "Background: auto picks light or dark, whichever more of the points stand out against" }, [
      autoOption,
      el("option", { value: "light", textContent: "light" }),
      el("option", { value: "grey", textContent: "grey" }),
      el("option", { value: "dark", textContent: "dark" }),
    ]);
    const cameras = el("input", { className: "one4d-cameras", type: "checkbox", checked: true });
    const trajectory = el("input", { className: "one4d-trajectory", type: "checkbox", checked: true });
    const label = (text, input, title = "") => el("label", { className: "one4d-field", title }, [text, input]);

    play.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    slider.addEventListener("input", () => { this.pause(); this.setFrame(Number(slider.value)); });
    fit.addEventListener("click", () => this.fit());
    color.addEventListener("change", () => this.setColorMode(color.value));
    budget.addEventListener("change", () => this.setBudget(Number(budget.value)));
    size.addEventListener("input", () => this.setPointSize(size.value));
    fps.addEventListener("change", () => { this.setFps(fps.value); fps.value = String(this.fps); });
    background.addEventListener("change", () => this.setBackground(background.value));
    cameras.addEventListener("change", () => this.setShowCameras(cameras.checked));
    trajectory.addEventListener("change", () => this.setShowTrajectory(trajectory.checked));

    // Two rows that wrap where the node is narrow; the widget gives the stage whatever height the
    // controls leave, so they are never cut off (see one4d_preview.js).
    const bar = el("div", { className: "one4d-controls" }, [
      el("div", { className: "one4d-row one4d-row-play" }, [
        play, slider, frameLabel,
        label("cams", cameras, "Show the camera frustums (the current one highlighted)"),
        label("path", trajectory, "Show the camera path"), fit,
      ]),
      el("div", { className: "one4d-row" }, [color, budget, label("size", size), label("fps", fps), label("bg", background)]),
    ]);
    host.append(bar);
    this.ui = { bar, play, slider, frameLabel, fps, size, color, budget, background, autoOption, cameras, trajectory, fit };
    this._setPointSize(size.value);
  }

  /** Brings the controls in line with a newly loaded payload. */
  _syncControls(total) {
    const { frames, counts } = this.payload;
    const ui = this.ui;
    ui.slider.max = String(frames - 1);
    ui.slider.disabled = frames < 2;
    ui.play.disabled = frames < 2;
    ui.fps.value = String(Math.round(this.fps));
    const most = Math.max(...counts);
    ui.budget.replaceChildren(
      el("option", { value: "0", textContent: `all ${formatCount(most)} pts` }),
      ...BUDGET_CHOICES.filter((n) => n < most).reverse().map((n) => el("option", { value: String(n), textContent: `${formatCount(n)} pts` })),
    );
    if (!(this.budget < most)) this.budget = Infinity;  // keep a smaller budget the user chose
    ui.budget.value = Number.isFinite(this.budget) ? String(this.budget) : "0";
    const hasCameras = this.cameras !== null;
    for (const box of [ui.cameras, ui.trajectory]) {
      box.disabled = !hasCameras;
      if (!hasCameras) box.parentElement.title = "This preview has no camera poses";
    }
    Object.assign(this.root.dataset, { frames: String(frames), totalPoints: String(total) });
    this.setColorMode(this.colorMode);
  }
}
