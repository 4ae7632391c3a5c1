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
import * as THREE from "../vendor/three/three.module.mjs";
import { OrbitControls } from "../vendor/three/OrbitControls.mjs";

const COLOR_MODES = { rgb: 0, depth: 1, height: 2 };
const BUDGET_CHOICES = [5_000, 10_000, 25_000, 50_000, 100_000, 200_000, 500_000];
// Without a GPU (software WebGL) the draw rate is about a million points a second: start with a
// budget that keeps playback fluid there; the user can still pick "all".
const SOFTWARE_BUDGET = 50_000;
const BACKGROUND = 0x1b1b1f;
const FRUSTUM_COLOR = 0x7f9cf5;
const CURRENT_FRUSTUM_COLOR = 0xffa53d;
const TRAJECTORY_COLOR = 0xe5e5e5;

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
    this.frame = 0;
    this.playing = false;
    this.fps = 8;
    this.budget = Infinity;
    this.colorMode = "rgb";
    this.pointSize = 2;
    this.renders = 0;
    this._raf = null;
    this._lastTick = null;
    this._elapsed = 0;
    this._disposed = false;
    this._sceneObjects = [];

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
    this.renderer.setClearColor(BACKGROUND, 1);
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

    this.frame = Math.min(this.frame, payload.frames - 1);
    this.fps = header.fps || 8;
    this._syncControls(total);
    if (firstPayload) this.fit();
    this.setFrame(this.frame);
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

  _buildCameraOverlays() {
    this.frustums = this.currentFrustum = this.trajectory = null;
    if (!this.cameras) return;
    const { min, max } = this.payload.header.bbox_robust;
    const diagonal = Math.hypot(max[0] - min[0], max[1] - min[1], max[2] - min[2]) || 1;
    const depth = 0.1 * diagonal;
    const vertices = [];
    for (const cam of this.cameras) {
      const apex = cam.center;
      const corners = cam.corners.map(([x, y]) => cam.toWorld(x * depth, y * depth, depth));
      for (let i = 0; i < 4; i++) {
        vertices.push(apex, corners[i], corners[i], corners[(i + 1) % 4]);
      }
    }
    const all = new THREE.BufferGeometry().setFromPoints(vertices);
    // The current frame's frustum: the same vertices, its own draw range (set by setFrame).
    const current = new THREE.BufferGeometry();
    current.setAttribute("position", all.getAttribute("position"));
    this.frustums = new THREE.LineSegments(all, new THREE.LineBasicMaterial({
      color: FRUSTUM_COLOR, transparent: true, opacity: 0.35 }));
    this.currentFrustum = new THREE.LineSegments(current, new THREE.LineBasicMaterial({ color: CURRENT_FRUSTUM_COLOR }));
    this.trajectory = new THREE.Line(
      new THREE.BufferGeometry().setFromPoints(this.cameras.map((c) => c.center)),
      new THREE.LineBasicMaterial({ color: TRAJECTORY_COLOR }));
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

  setPointSize(pixels) {
    this.pointSize = Math.max(0.5, Number(pixels) || 1);
    this.material.uniforms.uPointSize.value = this.pointSize * this.renderer.getPixelRatio();
    this.material.uniforms.uRound.value = this.pointSize > 2.5;
    this.requestRender();
  }

  setBudget(pointsPerFrame) {
    this.budget = pointsPerFrame > 0 ? pointsPerFrame : Infinity;
    this.setFrame(this.frame);
  }

  setFps(fps) {
    this.fps = Math.min(Math.max(Number(fps) || 1, 0.1), 240);
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

  /** Frames the robust bounding box, seen from the direction of the frame-0 camera. */
  fit() {
    if (!this.payload) return;
    const { min, max } = this.payload.header.bbox_robust;
    // Centre of the box, from OpenCV axes to three.js axes (the world group's rotation).
    const center = new THREE.Vector3((min[0] + max[0]) / 2, -(min[1] + max[1]) / 2, -(min[2] + max[2]) / 2);
    const half = [0, 1, 2].map((i) => Math.max((max[i] - min[i]) / 2, 1e-3));
    // Looking along the frame-0 camera's axis, the box's x and y extents must fit the view.
    const tanY = Math.tan(THREE.MathUtils.degToRad(this.camera.fov) / 2);
    const tanX = tanY * this.camera.aspect;
    const distance = 1.1 * Math.max(half[0] / tanX, half[1] / tanY) + half[2];
    const radius = Math.hypot(...half);
    this.camera.near = radius / 1000;
    this.camera.far = (distance + radius) * 50;
    this.camera.position.copy(center).add(new THREE.Vector3(0, 0, distance));
    this.camera.up.set(0, 1, 0);
    this.camera.updateProjectionMatrix();
    this.controls.target.copy(center);
    this.controls.update();
    this.requestRender();
  }

  resize() {
    const width = Math.floor(this.stage.clientWidth);
    const height = Math.floor(this.stage.clientHeight);
    if (width < 1 || height < 1) return;  // hidden (collapsed node, zoomed-out canvas)
    this.renderer.setSize(width, height, false);
    this.camera.aspect = width / height;
    this.camera.updateProjectionMatrix();
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
    const fps = el("input", { className: "one4d-fps", type: "number", min: "1", max: "60", step: "1", value: "8", title: "Playback speed (frames per second)" });
    const size = el("input", { className: "one4d-size", type: "range", min: "1", max: "8", step: "0.5", value: "2", title: "Point size (pixels)" });
    const color = el("select", { className: "one4d-color", title: "Colour points by" }, [
      el("option", { value: "rgb", textContent: "RGB" }),
      el("option", { value: "depth", textContent: "Depth" }),
      el("option", { value: "height", textContent: "Height" }),
    ]);
    const budget = el("select", { className: "one4d-budget", title: "Points drawn per frame (a uniform subsample)" +
      (this.software ? ". This browser renders WebGL without a GPU: fewer points keep playback smooth." : "") });
    const cameras = el("input", { className: "one4d-cameras", type: "checkbox", checked: true });
    const trajectory = el("input", { className: "one4d-trajectory", type: "checkbox", checked: true });
    const fit = el("button", { className: "one4d-fit", textContent: "Fit", title: "Fit the point cloud in the view" });
    const label = (text, input) => el("label", { className: "one4d-field" }, [text, input]);

    play.addEventListener("click", () => (this.playing ? this.pause() : this.play()));
    slider.addEventListener("input", () => { this.pause(); this.setFrame(Number(slider.value)); });
    fps.addEventListener("change", () => { this.setFps(fps.value); fps.value = String(this.fps); });
    size.addEventListener("input", () => this.setPointSize(size.value));
    color.addEventListener("change", () => this.setColorMode(color.value));
    budget.addEventListener("change", () => this.setBudget(Number(budget.value)));
    cameras.addEventListener("change", () => this.setShowCameras(cameras.checked));
    trajectory.addEventListener("change", () => this.setShowTrajectory(trajectory.checked));
    fit.addEventListener("click", () => this.fit());

    const bar = el("div", { className: "one4d-controls" }, [
      el("div", { className: "one4d-row" }, [play, slider, frameLabel]),
      el("div", { className: "one4d-row" }, [
        label("fps", fps), label("size", size), label("color", color), label("points", budget),
        label("cameras", cameras), label("path", trajectory), fit,
      ]),
    ]);
    host.append(bar);
    this.ui = { bar, play, slider, frameLabel, fps, size, color, budget, cameras, trajectory, fit };
    this.setPointSize(size.value);
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
      el("option", { value: "0", textContent: `all (${formatCount(most)})` }),
      ...BUDGET_CHOICES.filter((n) => n < most).reverse().map((n) => el("option", { value: String(n), textContent: formatCount(n) })),
    );
    if (!(this.budget < most)) this.budget = Infinity;  // keep a smaller budget the user chose
    ui.budget.value = Number.isFinite(this.budget) ? String(this.budget) : "0";
    const hasCameras = this.cameras !== null;
    for (const box of [ui.cameras, ui.trajectory]) {
      box.disabled = !hasCameras;
      box.parentElement.title = hasCameras ? "" : "This preview has no camera poses";
    }
    Object.assign(this.root.dataset, { frames: String(frames), totalPoints: String(total) });
    this.setColorMode(this.colorMode);
  }
}
