// Fetching and parsing of One4D preview payloads (.o4dp), the format written by one4d/preview.py
// and documented in docs/preview.md. No three.js and no ComfyUI here: plain typed-array views.
//
// This file is an ES module with the .mjs extension on purpose: ComfyUI imports every *.js file
// under a pack's web directory as an extension at page load, and .mjs files are served but not
// imported that way (see docs/preview.md).

export const MAGIC = "O4DP";
export const SUPPORTED_VERSION = 1;
const PREAMBLE_BYTES = 16;

/** Error whose message is meant for the user, shown as is in the widget. */
export class PayloadError extends Error {
  constructor(message) {
    super(message);
    this.name = "PayloadError";
  }
}

/**
 * Downloads a payload, reporting progress as onProgress(loadedBytes, totalBytesOrNull).
 * Returns an ArrayBuffer. Throws PayloadError for HTTP failures, AbortError when aborted.
 */
export async function fetchPayload(url, { onProgress = () => {}, signal } = {}) {
  let response;
  try {
    response = await fetch(url, { signal, cache: "no-store" });
  } catch (err) {
    if (err && err.name === "AbortError") throw err;
    throw new PayloadError(`Could not reach the ComfyUI server to load the preview (${err.message || err}).`);
  }
  if (!response.ok) {
    const hint = response.status === 404
      ? " The file is gone: temporary previews are deleted when ComfyUI restarts. Run the workflow again."
      : "";
    throw new PayloadError(`Loading the preview failed: HTTP ${response.status} ${response.statusText}.${hint}`);
  }
  const total = Number(response.headers.get("Content-Length")) || null;
  if (!response.body || !response.body.getReader) {
    const buffer = await response.arrayBuffer();
    onProgress(buffer.byteLength, buffer.byteLength);
    return buffer;
  }
  const reader = response.body.getReader();
  // With a known length, stream straight into one buffer; otherwise collect chunks and join.
  const target = total ? new Uint8Array(total) : null;
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (target && loaded + value.byteLength <= total) target.set(value, loaded);
    else chunks.push(value);
    loaded += value.byteLength;
    onProgress(loaded, total);
  }
  if (target && loaded === total) return target.buffer;
  const joined = new Uint8Array(loaded);
  let offset = 0;
  if (target) {
    joined.set(target.subarray(0, Math.min(total, loaded)), 0);
    offset = Math.min(total, loaded);
  }
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return joined.buffer;
}

/**
 * Parses a payload. Returns {header, positions: Uint16Array (float16 bits, x y z 1 per point),
 * colors: Uint8Array (sRGB r g b 255 per point), frames, offsets, counts, K: Float64Array|null,
 * c2w: Float64Array|null}. The arrays are views into `buffer` (no copy).
 */
export function parsePayload(buffer) {
  if (!(buffer instanceof ArrayBuffer) || buffer.byteLength < PREAMBLE_BYTES) {
    throw new PayloadError("The preview file is empty or too short: it is not a One4D preview payload.");
  }
  const view = new DataView(buffer);
  const head = Array.from(new Uint8Array(buffer, 0, 4));
  if (String.fromCharCode(...head) !== MAGIC) {
    const shown = head.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, "0")}`)).join("");
    throw new PayloadError(`The preview file is not a One4D preview payload (it starts with "${shown}", not "${MAGIC}").`);
  }
  const version = view.getUint32(4, true);
  if (version !== SUPPORTED_VERSION) {
    throw new PayloadError(
      `The preview file has format version ${version}; this widget reads version ${SUPPORTED_VERSION}. ` +
      "Update the One4D node pack and reload the page.");
  }
  const headerBytes = view.getUint32(8, true);
  if (PREAMBLE_BYTES + headerBytes > buffer.byteLength) {
    throw new PayloadError("The preview file is truncated (its header runs past the end).");
  }
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, PREAMBLE_BYTES, headerBytes)));
  } catch (err) {
    throw new PayloadError(`The preview file's header is not valid JSON (${err.message}).`);
  }
  const total = header.total_points;
  const frames = header.frames;
  const counts = header.points_per_frame;
  const offsets = header.frame_offsets;
  if (!Number.isInteger(total) || !Number.isInteger(frames) || frames < 1 ||
      !Array.isArray(counts) || counts.length !== frames ||
      !Array.isArray(offsets) || offsets.length !== frames) {
    throw new PayloadError("The preview file's header is incomplete (frames, points_per_frame, frame_offsets).");
  }
  const posOffset = header.positions && header.positions.offset;
  const colOffset = header.colors && header.colors.offset;
  if (header.positions.dtype !== "float16" || header.colors.dtype !== "uint8" ||
      header.positions.shape[1] !== 4 || header.colors.shape[1] !== 4) {
    throw new PayloadError("The preview file stores positions or colours in a type this widget does not read.");
  }
  if (!(posOffset % 2 === 0 && posOffset + total * 8 <= buffer.byteLength && colOffset + total * 4 <= buffer.byteLength)) {
    throw new PayloadError("The preview file is truncated (its point data runs past the end).");
  }
  const cams = header.cameras || {};
  return {
    header,
    frames,
    counts,
    offsets,
    positions: new Uint16Array(buffer, posOffset, total * 4),
    colors: new Uint8Array(buffer, colOffset, total * 4),
    K: cams.K ? Float64Array.from(cams.K) : null,
    c2w: cams.c2w ? Float64Array.from(cams.c2w) : null,
  };
}
