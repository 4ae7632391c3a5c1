"""One training loop for every stage: AdamW with warm-up + cosine lr, gradient clipping, bf16 autocast on
CUDA, a wall-clock limit, and checkpoints that resume exactly.

A checkpoint (``<name>.state.pt``) holds the trainable parameters, the optimizer, the step and the state of
every random generator the stage draws from (its data and noise generators plus torch's global ones), so a
run stopped by its time limit, by Ctrl-C or by a lost machine continues as if it had never stopped: the
same batches, the same noise, the same updates. It is written atomically, so an interrupted write leaves
the previous checkpoint in place. It exists only while a stage is unfinished: a finished stage deletes it
(continuing a finished model is a new run from its weights, e.g. ``--one4d-init``), and a checkpoint of
another run (other steps, lr or parameters) is refused with the fix. Decision: the time limit ends the run
after the step in progress and always writes the checkpoint first; GPUs lent for minutes are used to the
last step.

Sharding: under ``accelerate launch --config_file one4d/training/configs/fsdp.yaml`` the module is sharded with
FSDP2 (each process keeps a slice of every parameter and of its optimizer state). Checkpoints are still
written whole (gathered on every process, written by the first), so a checkpoint of 8 sharded GPUs resumes on
one unsharded process and vice versa. accelerate shards only on GPUs; on CPU processes (gloo) the trainer sets
up the same FSDP2 sharding itself, which is how the tests run it.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import One4DInputError
from ..export.atomic import atomic_path
from ..sharding import full_tensor, is_sharded, shard_like

Generators = dict[str, "np.random.Generator | torch.Generator"]


def cosine_lr(step: int, total: int, peak: float, warmup: int = 100) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return peak * (step + 1) / warmup
    return peak * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


def log_values(work: Path, stage: str, step: int, **values: float) -> None:
    """Append one record to ``<work>/log.jsonl``."""
    with open(work / "log.jsonl", "a") as f:
        f.write(json.dumps({"stage": stage, "step": step, "time": time.time(), **values}) + "\n")


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` -> CUDA when one is present, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass
class Schedule:
    """How long and how fast a stage trains, and where it keeps its checkpoint."""

    steps: int
    lr: float
    state_path: Path
    time_limit: float = 0.0  # seconds; 0 = none
    checkpoint_every: int = 0  # steps; 0 = only when the run ends
    warmup: int | None = None  # steps of linear warm-up; None: a tenth of the run, at most 100
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    clip_norm: float = 1.0
    bf16: bool | None = None  # bf16 autocast around each step; None: on CUDA only (a CPU with AVX-512 BF16 gains ~1.4x too)


@dataclass
class Trainer:
    """Runs ``step_fn(model, shard)`` (which returns ``(loss, parts)``) for ``schedule.steps`` optimizer steps,
    resumably, on Hugging Face accelerate: one process, or several under ``torchrun`` / ``accelerate launch``
    (DDP), with ``accumulate`` micro-batches per step and bf16 mixed precision on CUDA.

    ``model`` is the module to call (DDP-wrapped when distributed). Every process draws the same global batch
    from identically seeded generators and trains on its ``shard`` (a slice of it), so N processes at batch b
    make the same updates as one process at batch N x b, and a checkpoint resumes on any number of processes
    that keeps the global batch (``identity``). Only the main process writes files."""

    module: torch.nn.Module
    schedule: Schedule
    generators: Generators
    work: Path
    tag: str
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    accumulate: int = 1
    identity: dict = field(default_factory=dict)  # what else a resumed run must share, e.g. its global batch
    step: int = 0

    def __post_init__(self) -> None:
        from accelerate import Accelerator

        s = self.schedule
        cuda = self.device.type == "cuda"
        cpu_fsdp = _cpu_fsdp_plugin(cuda)
        self.accelerator = Accelerator(cpu=not cuda, mixed_precision="bf16" if cuda else "no", gradient_accumulation_steps=self.accumulate,
                                       fsdp_plugin=cpu_fsdp)
        if cpu_fsdp is not None:
            from accelerate.utils import DistributedType

            self.accelerator.state.distributed_type = DistributedType.FSDP
            self.accelerator.state.fsdp_plugin = cpu_fsdp
        params = [p for p in self.module.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=s.lr, weight_decay=s.weight_decay, betas=s.betas)
        self.model, self.opt = self.accelerator.prepare(self.module, opt)
        # FSDP replaces the parameters with sharded ones (in the same order); DDP keeps them
        self.params = [p for p in self.accelerator.unwrap_model(self.model).parameters() if p.requires_grad]
        if any(is_sharded(p) for p in self.params):
            local = sum(p.to_local().numel() if is_sharded(p) else p.numel() for p in self.params)
            self._say(f"{self.tag}: FSDP across {self.accelerator.num_processes} processes: this process holds "
                      f"{100 * local / sum(p.numel() for p in self.params):.1f}% of the trainable values")
        if Path(s.state_path).exists():
            self._restore(torch.load(s.state_path, map_location="cpu", weights_only=False))
            self._say(f"{self.tag}: resumed at step {self.step} from {Path(s.state_path).name}")

    @property
    def bf16(self) -> bool:
        """Whether steps run under bf16 autocast: the schedule's choice, else on CUDA. Explicit rather than left
        to accelerate's wrapped forward, because stages such as the VAE's call submodules (encode, decode)."""
        s = self.schedule.bf16
        return self.device.type == "cuda" if s is None else s

    @property
    def fingerprint(self) -> dict:
        """What a checkpoint must share with this run to resume it."""
        s = self.schedule
        return {"tag": self.tag, "steps": s.steps, "lr": s.lr, "shapes": [list(p.shape) for p in self.params],
                "accumulate": self.accumulate, **self.identity}

    def shard(self, batch: int) -> slice:
        """This process's part of a global batch of ``batch`` x processes samples."""
        rank = self.accelerator.process_index
        return slice(rank * batch, (rank + 1) * batch)

    def run(self, step_fn: Callable[[torch.nn.Module], tuple[torch.Tensor, dict[str, float]]],
            on_checkpoint: Callable[[int], None] | None = None) -> bool:
        """Train until the schedule ends or the time limit passes; returns whether the schedule finished.

        ``on_checkpoint(step)`` is called on every process with every checkpoint (e.g. to write the weights
        too: reading a sharded model takes all processes, and only :func:`one4d.sharding.is_writer` writes)."""
        s, acc = self.schedule, self.accelerator
        t0 = time.time()
        steps_here = 0
        bar = tqdm(total=s.steps, initial=self.step, desc=self.tag, unit="step", disable=not acc.is_main_process, mininterval=2)
        while self.step < s.steps:
            for g in self.opt.param_groups:
                g["lr"] = cosine_lr(self.step, s.steps, s.lr, s.warmup if s.warmup is not None else max(1, min(100, s.steps // 10)))
            for _ in range(self.accumulate):
                with acc.accumulate(self.model), torch.autocast(self.device.type, torch.bfloat16, enabled=self.bf16):
                    loss, parts = step_fn(self.model)
                    acc.backward(loss)
                    if acc.sync_gradients:  # a non-finite gradient stops the run, clipped or not
                        self._check_finite(acc.clip_grad_norm_(self.params, s.clip_norm) if s.clip_norm else self._grad_peak(), loss)
                    self.opt.step()
                    self.opt.zero_grad(set_to_none=True)
            self.step += 1
            steps_here += 1
            bar.update(1)
            bar.set_postfix(loss=f"{parts['loss']:.4f}", refresh=False)
            if acc.is_main_process and (self.step % 20 == 0 or self.step == s.steps):
                rate = steps_here / max(time.time() - t0, 1e-9)
                log_values(self.work, self.tag, self.step, **parts, steps_per_s=rate)
            out_of_time = self._agreed(bool(s.time_limit) and time.time() - t0 >= s.time_limit and self.step < s.steps)
            if out_of_time or self.step == s.steps or (s.checkpoint_every and self.step % s.checkpoint_every == 0):
                self.save()
                if on_checkpoint is not None:
                    on_checkpoint(self.step)
                acc.wait_for_everyone()
            if out_of_time:
                bar.close()
                self._say(f"{self.tag}: time limit reached at step {self.step} of {s.steps}; run the same command again to resume")
                return False
        bar.close()
        if acc.is_main_process:
            Path(s.state_path).unlink(missing_ok=True)
        acc.wait_for_everyone()
        return True

    def _grad_peak(self) -> torch.Tensor:
        """The largest gradient magnitude of this process, summed over processes (only its finiteness is read)."""
        local = [(g.to_local() if is_sharded(g) else g).detach().abs().amax().float() for p in self.params if (g := p.grad) is not None]
        peak = torch.stack(local).amax() if local else torch.zeros((), device=self.device)
        return self.accelerator.reduce(peak, reduction="sum") if self.accelerator.num_processes > 1 else peak

    def _check_finite(self, grad_norm: torch.Tensor, loss: torch.Tensor) -> None:
        """Stop before a non-finite gradient reaches the weights: the last checkpoint stays as it was."""
        if torch.isfinite(grad_norm):
            return
        raise One4DInputError(
            f"{self.tag}: step {self.step + 1} gave non-finite gradients (loss {loss.item():.4g}); the weights were not "
            "updated, and the last checkpoint written is kept as it was. On a CPU with --precision bf16, run with "
            "--precision fp32 (some of torch's bf16 CPU kernels go wrong on some shapes); otherwise lower this stage's "
            "learning rate or set a gradient clip.")

    def _agreed(self, flag: bool) -> bool:
        """The main process's decision, the same on every process (a time limit must stop all at once)."""
        if self.accelerator.num_processes == 1:
            return flag
        from accelerate.utils import broadcast

        return bool(broadcast(torch.tensor([int(flag)], device=self.accelerator.device)).item())

    def _say(self, text: str) -> None:
        if self.accelerator.is_main_process:
            print(text)

    def save(self) -> None:
        """Write the resumable state atomically, whole (module docstring); every process must call it."""
        optimizer = self.opt.state_dict()
        optimizer["state"] = {i: {k: full_tensor(v).cpu() if torch.is_tensor(v) else v for k, v in entry.items()}
                              for i, entry in optimizer["state"].items()}
        params = [full_tensor(p.detach()).cpu().clone() for p in self.params]
        if not self.accelerator.is_main_process:
            return
        state = {
            "fingerprint": self.fingerprint,
            "step": self.step,
            "params": params,
            "optimizer": optimizer,
            "generators": {k: _generator_state(g) for k, g in self.generators.items()},
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        with atomic_path(Path(self.schedule.state_path)) as tmp:
            torch.save(state, tmp)

    def _restore(self, state: dict) -> None:
        if state["fingerprint"] != self.fingerprint:
            theirs, ours = state["fingerprint"], self.fingerprint
            diff = ", ".join(f"{k} {theirs.get(k)!r:.60} there, {ours.get(k)!r:.60} here"
                             for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k))
            raise One4DInputError(
                f"the checkpoint {self.schedule.state_path} belongs to another run ({diff}); rerun with that run's "
                "options to resume it, or delete the file to start this one."
            )
        with torch.no_grad():
            for p, saved in zip(self.params, state["params"]):
                p.copy_(shard_like(saved, p))
        optimizer = state["optimizer"]  # whole tensors, indexed like self.params: cut each like its parameter
        optimizer["state"] = {i: {k: shard_like(v, self.params[i]) if torch.is_tensor(v) and v.shape == self.params[i].shape else v
                                  for k, v in entry.items()} for i, entry in optimizer["state"].items()}
        self.opt.load_state_dict(optimizer)
        for k, g in self.generators.items():
            _set_generator_state(g, state["generators"][k])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step = int(state["step"])


def _cpu_fsdp_plugin(cuda: bool):
    """The FSDP plugin for CPU processes launched with an FSDP configuration (``ACCELERATE_USE_FSDP``), which
    accelerate would otherwise run as plain DDP; None on GPUs (accelerate sets FSDP up itself) or otherwise."""
    if cuda or os.environ.get("ACCELERATE_USE_FSDP", "false").lower() != "true" or int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return None
    from accelerate.utils import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin()


def _generator_state(g: "np.random.Generator | torch.Generator"):
    return g.bit_generator.state if isinstance(g, np.random.Generator) else g.get_state()


def _set_generator_state(g: "np.random.Generator | torch.Generator", state) -> None:
    if isinstance(g, np.random.Generator):
        g.bit_generator.state = state
    else:
        g.set_state(state)

