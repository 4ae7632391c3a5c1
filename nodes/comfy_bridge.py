"""The pack's only contact with ComfyUI: every ``comfy.*`` / ``folder_paths`` / ``latent_preview`` import.

Each function has a fallback for when ComfyUI is absent (tests, the headless runner, scripts), so the node
classes run anywhere:

- folders: ComfyUI's ``folder_paths``; otherwise ``ONE4D_OUTPUT_DIR`` / ``ONE4D_TEMP_DIR`` /
  ``ONE4D_INPUT_DIR`` / ``ONE4D_MODELS_DIR`` (defaults ``./output``, ``./temp``, ``./input``, ``./models``),
  or whatever :func:`set_fallback_dirs` set.
- devices: ``comfy.model_management`` (``--cpu``, ``--gpu-only`` ... are respected); otherwise CUDA if present.
- model loading: ``comfy.model_patcher.ModelPatcher`` + ``load_models_gpu(force_full_load=True)`` so ComfyUI
  can evict the model when another one needs the memory; otherwise a plain ``.to(device)``.
- progress: ``comfy.utils.ProgressBar`` with a latent preview (ComfyUI's own previewer for Wan 2.1 latents,
  following the user's ``--preview-method``); otherwise nothing.
- interrupt (Cancel): ``comfy.model_management.processing_interrupted`` /
  ``throw_exception_if_processing_interrupted``; otherwise a flag set by :func:`request_interrupt`.
- the library's cancellation and progress hook (:mod:`one4d.progress`): :func:`library_hook` installs the
  interrupt check and a progress bar per stage for the library code a node runs, and turns the library's
  ``One4DInterrupted`` into ComfyUI's interruption.
- node schema: :func:`v3_io` hands :mod:`nodes.v3` core's V3 ``io`` module (``comfy_api.latest``); otherwise
  None, and the nodes keep their V1 classes.
"""
from __future__ import annotations

import logging
import os
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import torch

from one4d.errors import One4DInterrupted
from one4d.progress import progress_hook

log = logging.getLogger("one4d")

try:  # ComfyUI is present when this module is imported inside a running ComfyUI
    import comfy.model_management as _mm  # type: ignore
    import comfy.utils as _cu  # type: ignore
    import folder_paths as _fp  # type: ignore

    HAVE_COMFY = True
except ImportError:  # tests, scripts, the headless runner
    _mm = _cu = _fp = None
    HAVE_COMFY = False



def v3_io() -> Any:
    """``comfy_api.latest.io`` (core's V3 node schema) inside a ComfyUI that has it, else None."""
    if not HAVE_COMFY:
        return None
    try:
        from comfy_api.latest import io  # type: ignore
    except ImportError:  # a ComfyUI from before the V3 schema
        return None
    return io


ONE4D_FOLDER = "one4d"  # models/one4d: One4D weight files (both adapters + control links)
# The .gguf files of the diffusion_models folders (ComfyUI lists only its own formats there, and adding
# .gguf to that list would offer GGUF files to core loaders that cannot read them): same folders, own key.
GGUF_DIT_FOLDER = "one4d_dit_gguf"
_FOLDER_FILES = {GGUF_DIT_FOLDER: ("diffusion_models", "*.gguf")}  # without ComfyUI: (folder, pattern)
_FALLBACK: dict[str, Path] = {}
_interrupt_flag = False


# ---------------------------------------------------------------------------------------------------------
# folders
# ---------------------------------------------------------------------------------------------------------

def set_fallback_dirs(output: Optional[os.PathLike] = None, temp: Optional[os.PathLike] = None,
                      input: Optional[os.PathLike] = None, models: Optional[os.PathLike] = None) -> None:  # noqa: A002
    """Folders used when ComfyUI is absent (tests and scripts)."""
    for key, value in (("output", output), ("temp", temp), ("input", input), ("models", models)):
        if value is not None:
            _FALLBACK[key] = Path(value).resolve()


def _fallback_dir(key: str, env: str) -> Path:
    if key in _FALLBACK:
        return _FALLBACK[key]
    return Path(os.environ.get(env, key)).resolve()


def output_directory() -> str:
    return _fp.get_output_directory() if HAVE_COMFY else str(_fallback_dir("output", "ONE4D_OUTPUT_DIR"))


def temp_directory() -> str:
    return _fp.get_temp_directory() if HAVE_COMFY else str(_fallback_dir("temp", "ONE4D_TEMP_DIR"))


def input_directory() -> str:
    return _fp.get_input_directory() if HAVE_COMFY else str(_fallback_dir("input", "ONE4D_INPUT_DIR"))


def register_model_folder() -> None:
    """Create ``models/one4d`` (for One4D weight files) if it is missing, and register it with ComfyUI's
    model folder list."""
    if not HAVE_COMFY:
        return
    folder = os.path.join(_fp.models_dir, ONE4D_FOLDER)
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:  # a read-only models folder must not stop the pack from loading
        log.info("One4D: could not create %s (%s)", folder, exc)
    _fp.add_model_folder_path(ONE4D_FOLDER, folder, is_default=True)
    exts = _fp.folder_names_and_paths[ONE4D_FOLDER][1]
    exts.add(".safetensors")
    if "diffusion_models" in _fp.folder_names_and_paths and GGUF_DIT_FOLDER not in _fp.folder_names_and_paths:
        # the same list object, so folders added to diffusion_models later (extra_model_paths) count too
        _fp.folder_names_and_paths[GGUF_DIT_FOLDER] = (_fp.folder_names_and_paths["diffusion_models"][0], {".gguf"})


def model_files(folder: str) -> list[str]:
    """Files of a model folder (``diffusion_models``, ``vae``, ``loras``, ``one4d``), as ComfyUI lists them."""
    if HAVE_COMFY:
        try:
            return list(_fp.get_filename_list(folder))
        except KeyError:
            return []
    folder, pattern = _FOLDER_FILES.get(folder, (folder, "*.safetensors"))
    root = _fallback_dir("models", "ONE4D_MODELS_DIR") / folder
    if not root.is_dir():
        return []
    return sorted(str(p.relative_to(root)).replace(os.sep, "/") for p in root.rglob(pattern) if p.is_file())


def dit_files() -> list[str]:
    """The DiT files a user can pick: those ComfyUI lists in ``diffusion_models``, then its ``.gguf`` files."""
    return model_files("diffusion_models") + model_files(GGUF_DIT_FOLDER)


def dit_path(name: str) -> Path:
    """Full path of a listed DiT file (safetensors & co or GGUF), or a clear error."""
    return model_path(GGUF_DIT_FOLDER if name.lower().endswith(".gguf") else "diffusion_models", name)


def model_path(folder: str, name: str) -> Path:
    """Full path of a listed model file, or a clear error."""
    from one4d.errors import One4DInputError

    path = None
    if HAVE_COMFY:
        path = _fp.get_full_path(folder, name)
    else:
        candidate = _fallback_dir("models", "ONE4D_MODELS_DIR") / _FOLDER_FILES.get(folder, (folder,))[0] / name
        path = str(candidate) if candidate.is_file() else None
    if not path:
        shown = _FOLDER_FILES.get(folder, (folder,))[0]
        where = _fp.get_folder_paths(folder) if HAVE_COMFY else [str(_fallback_dir("models", "ONE4D_MODELS_DIR") / shown)]
        raise One4DInputError(
            f"model file '{name}' was not found in models/{shown} ({', '.join(where)}); put it there (or pick another "
            "file) and press R to refresh the lists."
        )
    return Path(path)


_BAD_PREFIX = re.compile(r"^([A-Za-z]:|[\\/~])")


def check_prefix(prefix: str) -> str:
    """A filename prefix must name files inside the output folder: not empty (no silent default: the user
    cleared it, so say so), relative, no '..' parts, and a file name after the last slash."""
    from one4d.errors import One4DInputError

    text = (prefix or "").strip()
    if not text:
        raise One4DInputError(
            "filename_prefix is empty; type a name for the files, e.g. 'one4d/scene' (the default), which writes "
            "output/one4d/scene_00001_.ply and so on."
        )
    parts = re.split(r"[\\/]+", text)
    if _BAD_PREFIX.match(text) or os.path.isabs(text) or any(p == ".." for p in parts):
        raise One4DInputError(
            f"filename_prefix '{prefix}' must be a relative name inside the output folder, without '..', a leading "
            "slash or a drive letter (e.g. 'one4d/scene'); files are never written outside output/."
        )
    if not parts[-1]:
        folder = text.rstrip("/\\")
        raise One4DInputError(
            f"filename_prefix '{prefix}' names a folder but no file name; add one after the last slash (e.g. '{folder}/scene')."
        )
    return text


def get_save_image_path(prefix: str, out_dir: str) -> tuple[str, str, int, str]:
    """``(folder, filename, counter, subfolder)`` as ComfyUI's ``folder_paths.get_save_image_path`` returns them."""
    prefix = check_prefix(prefix)
    if HAVE_COMFY:
        folder, filename, counter, subfolder, _ = _fp.get_save_image_path(prefix, out_dir)
        return folder, filename, counter, subfolder
    # Same rules as ComfyUI: subfolder from the prefix, counter = 1 + the largest "<filename>_<digits>_" in use.
    norm = os.path.normpath(prefix)
    subfolder, filename = os.path.dirname(norm), os.path.basename(norm)
    folder = os.path.join(out_dir, subfolder)
    if os.path.commonpath((os.path.abspath(out_dir), os.path.abspath(folder))) != os.path.abspath(out_dir):
        raise ValueError("Saving outside the output folder is not allowed.")
    counter = 1
    if os.path.isdir(folder):
        pattern = re.compile(re.escape(filename) + r"_(\d+)_")
        used = [int(m.group(1)) for f in os.listdir(folder) if (m := pattern.match(f))]
        counter = max(used, default=0) + 1
    return folder, filename, counter, subfolder


# ---------------------------------------------------------------------------------------------------------
# devices and model management
# ---------------------------------------------------------------------------------------------------------

def torch_device() -> torch.device:
    if HAVE_COMFY:
        return _mm.get_torch_device()
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def offload_device() -> torch.device:
    return _mm.unet_offload_device() if HAVE_COMFY else torch.device("cpu")


def vae_device() -> torch.device:
    return _mm.vae_device() if HAVE_COMFY else torch_device()


def supports_bf16(device: torch.device) -> bool:
    if HAVE_COMFY:
        try:
            return bool(_mm.should_use_bf16(device))
        except Exception:  # older ComfyUI signatures
            pass
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


class _PlainPatcher:
    """Stand-in for ModelPatcher without ComfyUI: moves the module to its device when loaded."""

    def __init__(self, model: torch.nn.Module, load_device: torch.device, offload_device: torch.device):
        self.model, self.load_device, self.offload_device = model, load_device, offload_device

    def load(self) -> None:
        self.model.to(self.load_device)


def make_patcher(module: torch.nn.Module, load_device: torch.device, offload: torch.device):
    """Wrap a module so ComfyUI's model management can load and evict it."""
    if HAVE_COMFY:
        import comfy.model_patcher  # type: ignore

        return comfy.model_patcher.ModelPatcher(module, load_device=load_device, offload_device=offload)
    return _PlainPatcher(module, load_device, offload)


def load_models(patchers: list, memory_required: int = 0) -> None:
    """Load whole models onto their devices; ComfyUI first unloads other models until the weights plus
    ``memory_required`` bytes (the activations of the coming step) fit."""
    if HAVE_COMFY:
        _mm.load_models_gpu(patchers, memory_required=int(memory_required), force_full_load=True)
    else:
        for p in patchers:
            p.load()


def free_memory(num_bytes: int, device: torch.device) -> None:
    """Ask ComfyUI to unload other models until ``num_bytes`` are free on ``device`` (block-swap mode)."""
    if HAVE_COMFY and device.type != "cpu":
        _mm.free_memory(num_bytes, device)


def soft_empty_cache() -> None:
    if HAVE_COMFY:
        _mm.soft_empty_cache()
    elif torch.cuda.is_available():
        torch.cuda.empty_cache()


def on_unload_models(callback: Callable[[], None]) -> None:
    """Run ``callback`` each time ComfyUI unloads all models (``POST /free``: the frontend's and
    ComfyUI-Manager's free-memory buttons), so the pack drops its own cache with them. ComfyUI offers no
    hook for this, so ``comfy.model_management.unload_all_models`` is wrapped once; the wrapper calls the
    original first, and a failing callback is logged, never raised."""
    if not HAVE_COMFY:
        return
    current = _mm.unload_all_models
    hooks = getattr(current, "one4d_hooks", None)
    if hooks is None:
        original = current

        def unload_all_models(*args, **kwargs):
            result = original(*args, **kwargs)
            for hook in list(unload_all_models.one4d_hooks):
                try:
                    hook()
                except Exception as exc:
                    log.warning("one4d: releasing the pack's models failed: %s", exc)
            return result

        unload_all_models.one4d_hooks = hooks = []
        _mm.unload_all_models = unload_all_models
    if callback not in hooks:
        hooks.append(callback)


def unload_from_comfy(patcher) -> None:
    """Tell ComfyUI's model manager to forget ``patcher`` before the pack drops it (no leak warning)."""
    if not HAVE_COMFY or patcher is None:
        return
    try:
        for i in range(len(_mm.current_loaded_models) - 1, -1, -1):
            loaded = _mm.current_loaded_models[i]
            if loaded.model is patcher:
                loaded.model_unload()
                _mm.current_loaded_models.pop(i)
    except Exception as exc:  # never fail a prompt because of bookkeeping
        log.debug("one4d: could not unload a model from ComfyUI's list: %s", exc)


# ---------------------------------------------------------------------------------------------------------
# progress, preview, interrupt
# ---------------------------------------------------------------------------------------------------------

def make_progress(total: int, preview_device: torch.device | None = None) -> Callable[[int, int, Optional[torch.Tensor]], None]:
    """``update(step, total, x0_latents)``: ComfyUI's progress bar with a live latent preview when enabled."""
    bar = progress_bar(total)
    if bar is None:
        return lambda step, n, x0=None: None
    previewer = None
    try:
        import comfy.latent_formats  # type: ignore
        import latent_preview  # type: ignore

        previewer = latent_preview.get_previewer(preview_device or torch_device(), comfy.latent_formats.Wan21())
    except Exception as exc:  # previews are a nicety: never fail sampling for them
        log.debug("one4d: no latent preview (%s)", exc)

    def update(step: int, n: int, x0: Optional[torch.Tensor] = None) -> None:
        preview = None
        if previewer is not None and x0 is not None:
            try:
                mid = x0.shape[2] // 2  # the previewer shows latent frame 0: show the clip's middle instead
                preview = previewer.decode_latent_to_preview_image("JPEG", x0[:, :, mid:mid + 1].float())
            except Exception as exc:
                log.debug("one4d: preview failed (%s)", exc)
        bar.update_absolute(step, n, preview)

    return update


def progress_bar(total: int) -> Any:
    """A ``comfy.utils.ProgressBar`` of the running node (``update_absolute(value, total, preview)``); None
    without ComfyUI."""
    return _cu.ProgressBar(total) if HAVE_COMFY else None


class _StageBars:
    """``report(stage, done, total)`` of :mod:`one4d.progress` on ComfyUI's progress bar: a fresh bar when the
    stage changes, updated at most once per percent (each update is a message to the page)."""

    def __init__(self) -> None:
        self.stage: Optional[str] = None
        self.bar: Any = None
        self.shown = -1

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stage, self.bar, self.shown = stage, progress_bar(total), -1
            log.debug("One4D: %s", stage)
        percent = 100 * done // max(total, 1)
        if self.bar is not None and percent != self.shown:
            self.shown = percent
            self.bar.update_absolute(done, total)


@contextmanager
def library_hook(progress: bool = True) -> Iterator[None]:
    """Run library code with ComfyUI's Cancel (and, with ``progress``, a progress bar per stage) installed in
    :mod:`one4d.progress`; a cancel stops it at the library's next check and leaves as ComfyUI's interruption
    (shown as cancelled, not as an error). Nodes whose own bar covers the run pass ``progress=False``."""
    with progress_hook(interrupted, _StageBars() if progress else None):
        try:
            yield
        except One4DInterrupted as exc:
            log.info("One4D: %s", exc)
            raise_interrupted(exc)
        except BaseException as exc:
            if is_interruption(exc):
                log.info("One4D: cancelled")
            raise


def request_interrupt(value: bool = True) -> None:
    """Simulate ComfyUI's Cancel button (used without ComfyUI, e.g. in tests)."""
    global _interrupt_flag
    if HAVE_COMFY:
        _mm.interrupt_current_processing(value)
    else:
        _interrupt_flag = value


def interrupted() -> bool:
    return bool(_mm.processing_interrupted()) if HAVE_COMFY else _interrupt_flag


def raise_interrupted(exc: BaseException) -> None:
    """Re-raise a stop as ComfyUI's own interruption (shown as "cancelled", not as an error)."""
    global _interrupt_flag
    if HAVE_COMFY:
        _mm.throw_exception_if_processing_interrupted()
    _interrupt_flag = False
    raise exc


def is_interruption(exc: BaseException) -> bool:
    return HAVE_COMFY and isinstance(exc, _mm.InterruptProcessingException)


def describe() -> dict[str, Any]:
    """What the bridge found (for logs and tests)."""
    return {"comfyui": HAVE_COMFY, "device": str(torch_device()), "output": output_directory()}
