"""Inference benchmark on CUDA against the CPU: `python -m bench.gpu_check`.

Prints the speedup of batched inference (IEMOCAP-size synthetic test split) on the GPU over the
CPU, or a message and exit status 0 when no CUDA device is visible.
"""

from __future__ import annotations

import json
import sys
import time


def _time_inference(model, ds, device, repeats=3) -> float:
    import torch

    from aofl.inference import run_inference

    model = model.to(device)
    run_inference(model, ds, "test")
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        run_inference(model, ds, "test")
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best


def main(argv=None) -> int:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device visible: nothing to compare (the CPU numbers are in `python -m aofl bench`)")
        return 0
    from aofl.model import AOFL
    from aofl.train import model_config_for

    from .inference import iemocap_like_test_split

    ds = iemocap_like_test_split()
    torch.manual_seed(0)
    model = AOFL(model_config_for(ds, "full")).eval()
    cpu = _time_inference(model, ds, torch.device("cpu"))
    gpu = _time_inference(model, ds, torch.device("cuda"))
    print(
        json.dumps(
            {
                "device": torch.cuda.get_device_name(0),
                "cpu_s": round(cpu, 4),
                "cuda_s": round(gpu, 4),
                "cuda_speedup_over_cpu": round(cpu / gpu, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
