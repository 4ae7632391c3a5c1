#!/usr/bin/env python3
"""Run an API-format workflow on a running ComfyUI and download what it made (standard library only).

    python scripts/comfy_client.py example_workflows/api/one4d_embedded_cpu.json --out results
    python scripts/comfy_client.py my_api.json --server 192.168.1.5:8188 --upload photo.png \\
        --set 3.inputs.image=photo.png --set 5.inputs.seed=7

Steps: optional uploads (``POST /upload/image``, the same route the browser uses), ``POST /prompt`` (a
validation error is printed node by node), then waiting on ``GET /history/<prompt_id>`` until the prompt
finished (progress lines come from ``GET /queue``), then every file the output nodes reported (images,
``one4d_preview`` payloads, ``3d`` models, ``one4d_files`` exports) is downloaded through ``GET /view``
into ``--out`` (folders such as the COLMAP export are skipped: /view serves files only; they are on the
server's output folder). Exit status 0 on success, 1 on a failed prompt, 2 on bad arguments or connection.

Importable: :class:`ComfyClient` for scripts and tests.
"""
from __future__ import annotations

import argparse
import json
import mimetypes
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Iterable, Optional


class ComfyError(RuntimeError):
    """The server refused or failed a prompt; ``details`` holds the server's JSON."""

    def __init__(self, message: str, details: Any = None):
        super().__init__(message)
        self.details = details


class ComfyClient:
    def __init__(self, server: str = "127.0.0.1:8188", timeout: float = 30.0):
        self.base = server if server.startswith("http") else f"http://{server}"
        self.timeout = timeout
        self.client_id = uuid.uuid4().hex

    # --- HTTP -------------------------------------------------------------------------------------------
    def _request(self, path: str, data: Optional[bytes] = None, headers: Optional[dict] = None) -> bytes:
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                details = json.loads(body)
            except ValueError:
                details = body.decode("utf-8", "replace")
            raise ComfyError(f"{exc.code} from {path}", details) from None

    def get_json(self, path: str) -> Any:
        return json.loads(self._request(path))

    def post_json(self, path: str, payload: Any) -> Any:
        body = self._request(path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        return json.loads(body) if body.strip() else None

    # --- API ------------------------------------------------------------------------------------------
    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def upload_image(self, path: Path, subfolder: str = "", overwrite: bool = True) -> dict:
        """Upload a file into ComfyUI's input folder (``/upload/image`` takes images and videos)."""
        boundary = uuid.uuid4().hex
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        parts = [
            (f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
             f"Content-Type: {ctype}\r\n\r\n").encode() + path.read_bytes() + b"\r\n",
            f'--{boundary}\r\nContent-Disposition: form-data; name="overwrite"\r\n\r\n{str(overwrite).lower()}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="subfolder"\r\n\r\n{subfolder}\r\n'.encode(),
            f"--{boundary}--\r\n".encode(),
        ]
        body = b"".join(parts)
        return json.loads(self._request("/upload/image", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}))

    def queue_prompt(self, prompt: dict) -> str:
        try:
            reply = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        except ComfyError as exc:
            raise ComfyError("the server refused the workflow:\n" + describe_errors(exc.details), exc.details) from None
        if reply.get("node_errors"):
            raise ComfyError("the server refused the workflow:\n" + describe_errors(reply), reply)
        return reply["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 3600.0, poll: float = 0.5, log=None) -> dict:
        """Wait until the prompt is in ``/history``; returns its entry (raises ComfyError if it failed)."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            history = self.get_json(f"/history/{urllib.parse.quote(prompt_id)}")
            entry = history.get(prompt_id)
            if entry is not None and entry.get("status", {}).get("completed") is not None:
                status = entry.get("status", {})
                if status.get("status_str") == "error" or not status.get("completed", True):
                    raise ComfyError("the prompt failed:\n" + describe_messages(status.get("messages", [])), entry)
                return entry
            if log is not None:
                queue = self.get_json("/queue")
                state = f"running {len(queue.get('queue_running', []))}, pending {len(queue.get('queue_pending', []))}"
                if state != last:
                    log(f"[{time.time() - t0:6.1f} s] queue: {state}")
                    last = state
            time.sleep(poll)
        raise ComfyError(f"the prompt did not finish within {timeout:.0f} s")

    def download(self, ref: dict, out_dir: Path) -> Optional[Path]:
        """Download one ``{filename, subfolder, type}`` entry through ``/view`` (None for folders)."""
        query = urllib.parse.urlencode({"filename": ref["filename"], "subfolder": ref.get("subfolder", ""),
                                        "type": ref.get("type", "output")})
        try:
            data = self._request("/view?" + query)
        except ComfyError:
            return None  # e.g. a folder export (COLMAP, depth PNGs): /view serves files only
        target = out_dir / ref.get("subfolder", "") / ref["filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        return target

    def run(self, prompt: dict, out_dir: Path, timeout: float = 3600.0, log=print) -> tuple[dict, list[Path]]:
        prompt_id = self.queue_prompt(prompt)
        log(f"queued prompt {prompt_id}")
        t0 = time.time()
        entry = self.wait(prompt_id, timeout=timeout, log=log)
        log(f"finished in {time.time() - t0:.1f} s")
        files = []
        for ref in file_refs(entry.get("outputs", {})):
            path = self.download(ref, out_dir)
            if path is not None:
                files.append(path)
                log(f"  {path}")
        return entry, files


def file_refs(outputs: dict) -> Iterable[dict]:
    """Every ``{filename, subfolder, type}`` entry in a history entry's outputs, once."""
    seen = set()
    for node_out in outputs.values():
        for value in node_out.values():
            if not isinstance(value, list):
                continue
            for item in value:
                if isinstance(item, dict) and "filename" in item:
                    key = (item["filename"], item.get("subfolder", ""), item.get("type", "output"))
                    if key not in seen:
                        seen.add(key)
                        yield item


def describe_errors(details: Any) -> str:
    if not isinstance(details, dict):
        return str(details)
    lines = []
    err = details.get("error")
    if isinstance(err, dict):
        lines.append(f"  {err.get('message', '')}: {err.get('details', '')}".rstrip(": "))
    for node_id, info in (details.get("node_errors") or {}).items():
        for e in info.get("errors", []):
            lines.append(f"  node {node_id} ({info.get('class_type')}): {e.get('message')}: {e.get('details', '')}")
    return "\n".join(lines) or json.dumps(details)[:2000]


def describe_messages(messages: list) -> str:
    lines = []
    for kind, data in messages:
        if kind == "execution_error":
            lines.append(f"  node {data.get('node_id')} ({data.get('node_type')}): {data.get('exception_message', '').strip()}")
        elif kind == "execution_interrupted":
            lines.append(f"  interrupted at node {data.get('node_id')} ({data.get('node_type')})")
    return "\n".join(lines) or "  (no message)"


def set_value(prompt: dict, assignment: str) -> None:
    """``NODE.inputs.NAME=VALUE`` (VALUE parsed as JSON when possible, else taken as a string)."""
    target, _, raw = assignment.partition("=")
    parts = target.split(".")
    if len(parts) != 3 or parts[1] != "inputs" or parts[0] not in prompt:
        raise ValueError(f"--set {assignment!r}: use NODE_ID.inputs.NAME=VALUE with a node id of the workflow")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    prompt[parts[0]]["inputs"][parts[2]] = value


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("workflow", type=Path, help="API-format workflow JSON (e.g. example_workflows/api/*.json)")
    p.add_argument("--server", default="127.0.0.1:8188", help="host:port of ComfyUI (default 127.0.0.1:8188)")
    p.add_argument("--out", type=Path, default=Path("comfy_outputs"), help="where downloaded outputs go")
    p.add_argument("--upload", type=Path, action="append", default=[], help="file to upload to ComfyUI's input folder first")
    p.add_argument("--set", dest="sets", action="append", default=[], help="override an input: NODE.inputs.NAME=VALUE")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to wait for the prompt")
    args = p.parse_args(argv)
    try:
        prompt = json.loads(args.workflow.read_text())
        if "nodes" in prompt and "links" in prompt:
            print("this is a UI-format workflow; use its API-format twin (example_workflows/api/) or ComfyUI's "
                  "'Export (API)'.", file=sys.stderr)
            return 2
        for assignment in args.sets:
            set_value(prompt, assignment)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    client = ComfyClient(args.server)
    try:
        for path in args.upload:
            print(f"uploaded {client.upload_image(path)['name']}")
        _, files = client.run(prompt, args.out, timeout=args.timeout)
    except ComfyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        print(f"error: cannot reach ComfyUI at {args.server} ({exc})", file=sys.stderr)
        return 2
    print(f"{len(files)} file(s) in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
