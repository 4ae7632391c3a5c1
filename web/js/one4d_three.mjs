// The three.js the 4D preview draws with: the page's own copy when the page exposes one, otherwise
// the copy vendored in web/vendor/three. Loading a second copy next to the page's makes three.js warn
// "Multiple instances of Three.js being imported" and doubles the ~2 MB of script.
//
// How a page can expose three.js, checked in this order:
//   1. `window.THREE`: a full three.js namespace set by the page or by another extension;
//   2. an import map of the page that maps the bare specifier "three" (`<script type="importmap">`),
//      the way ES-module pages share one copy; it is imported through that map.
// The ComfyUI frontend itself does neither (checked on frontends 1.27.10 and 1.58.1): it bundles
// three.js into its own script chunks (1.27.10 into its main chunk, r170; 1.58.1 into a lazily
// loaded "vendor-three" chunk, r186), its import map lists only vue, vue-i18n and primevue, and
// the only global it leaves is three's own revision marker `window.__THREE__`. On such pages the
// vendored copy is the fallback, and three.js still prints its warning once when the frontend's
// copy has been loaded too.
//
// A page's copy is used only when it is recent enough for the vendored OrbitControls (which this
// module feeds, see below) and has what the viewer uses; otherwise the vendored copy is loaded.
//
// web/vendor/three/OrbitControls.mjs imports its three.js classes from this module (its one
// rewritten specifier), so the orbit controls always work on the same copy as the viewer.

const MIN_PAGE_REVISION = 170;
const REQUIRED = ["WebGLRenderer", "Controls", "Float16BufferAttribute", "ShaderMaterial", "Points",
  "LineSegments", "BufferGeometry", "PerspectiveCamera", "Scene", "Group", "Spherical", "Quaternion"];

/** True when `ns` looks like a three.js namespace the viewer can use. */
export function isUsableThree(ns) {
  if (!ns || (typeof ns !== "object" && typeof ns !== "function")) return false;
  const revision = Number.parseInt(ns.REVISION, 10);
  return revision >= MIN_PAGE_REVISION && REQUIRED.every((name) => typeof ns[name] === "function")
    && typeof ns.DataUtils?.fromHalfFloat === "function";
}

function importMapHasThree() {
  for (const script of document.querySelectorAll('script[type="importmap"]')) {
    try {
      if (JSON.parse(script.textContent || "{}").imports?.three) return true;
    } catch {
      // not JSON: the browser ignores such a map as well
    }
  }
  return false;
}

async function resolveThree() {
  const global = globalThis.THREE;
  if (isUsableThree(global)) return { THREE: global, source: "page:window.THREE" };
  if (typeof document !== "undefined" && importMapHasThree()) {
    try {
      const specifier = "three";  // resolved by the page's import map
      const mapped = await import(specifier);
      if (isUsableThree(mapped)) return { THREE: mapped, source: "page:importmap" };
    } catch (err) {
      console.info("[One4D] the page maps \"three\" but it did not load; using the vendored copy.", err);
    }
  }
  return { THREE: await import("../vendor/three/three.module.mjs"), source: "vendored" };
}

const resolved = await resolveThree();

/** The three.js namespace in use. */
export const THREE = resolved.THREE;
/** Where it came from: "page:window.THREE", "page:importmap" or "vendored". */
export const THREE_SOURCE = resolved.source;

// The classes OrbitControls.mjs imports.
export const { Controls, MOUSE, Quaternion, Spherical, TOUCH, Vector2, Vector3, Plane, Ray, MathUtils } = THREE;
