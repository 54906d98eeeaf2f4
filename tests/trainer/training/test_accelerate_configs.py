"""The shipped accelerate configs: valid for accelerate, DeepSpeed stages as named, and the CPU one really
launches 2 processes over gloo, then runs GRPO with them against a live service."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

from tests.conftest import LiveServer

ROOT = Path(__file__).resolve().parents[3]
CONFIGS = ROOT / "trainer" / "configs" / "accelerate"
ACCELERATE = str(Path(sys.executable).parent / "accelerate")


@pytest.mark.parametrize(
    ("name", "kind", "zero_stage"),
    [
        ("multi_gpu.yaml", DistributedType.MULTI_GPU, None),
        ("deepspeed_zero2.yaml", DistributedType.DEEPSPEED, 2),
        ("deepspeed_zero3.yaml", DistributedType.DEEPSPEED, 3),
        ("cpu_2proc.yaml", DistributedType.MULTI_GPU, None),
    ],
)
def test_config_is_valid(name: str, kind: DistributedType, zero_stage: int | None) -> None:
    config = load_config_from_file(str(CONFIGS / name))  # raises on unknown keys
    assert config.distributed_type == kind
    assert config.num_machines == 1 and config.machine_rank == 0 and config.num_processes >= 2
    if zero_stage is None:
        assert not config.deepspeed_config
    else:
        ds = config.deepspeed_config
        assert ds["zero_stage"] == zero_stage and config.mixed_precision == "bf16"
        assert ds["offload_optimizer_device"] == ds["offload_param_device"] == "none"
        assert ds["zero3_init_flag"] is (zero_stage == 3)


def _launch(args: list[str], tmp: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`accelerate launch` over 2 CPU processes; on a timeout the launcher *and* its workers are killed (one
    session), and the test fails with the output, rather than leaving orphaned workers behind."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    cmd = [ACCELERATE, "launch", "--config_file", str(CONFIGS / "cpu_2proc.yaml"), *args]
    proc = subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"accelerate launch did not exit within {timeout:.0f} s\n{out[-2000:]}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_cpu_config_launches_two_gloo_processes(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "import torch.distributed as dist\n"
        "from accelerate import Accelerator\n"
        "s = Accelerator().state\n"
        "Path(sys.argv[1], f'rank{s.process_index}').write_text(f'{s.num_processes} {dist.get_backend()}')\n"
    )
    done = _launch([str(probe), str(tmp_path)], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "rank0").read_text() == (tmp_path / "rank1").read_text() == "2 gloo"


def test_grpo_with_two_processes_against_the_live_service(
    live_server: LiveServer, tiny_model_dir: Path, tmp_path: Path
) -> None:
    """One GRPO step, 2 CPU processes (DDP over gloo), rewards from the live service."""
    out = tmp_path / "run"
    args = [
        "-m", "trainer.training.grpo",
        "--config", "trainer/configs/smollm2-135m-cpu.yaml",
        "--model_name_or_path", str(tiny_model_dir),
        "--env_url", live_server.url,
        "--output_dir", str(out),
        "--use_cpu", "true",
        "--max_steps", "1",
        "--per_device_train_batch_size", "2",
        "--num_generations", "4",
        "--max_completion_length", "16",
        "--dataset_size", "8",
        "--report_to", "none",
        "--save_strategy", "no",
    ]  # fmt: skip
    done = _launch(args, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    log = done.stdout + done.stderr
    assert log.count("POST " + live_server.url + "/v1/score") >= 2  # each process scores its own half
    assert "'reward'" in log and (out / "adapter_config.json").exists()
