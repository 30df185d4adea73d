"""The pass the fused AMP unscale saves (issue 26): torch.amp.GradScaler driving halide_lars.LARS
over 16M parameters (4 tensors) with gradients in fp32, bf16 and fp16, timed per step:

  step alone        opt.step() with no scaler (the floor)
  unfused           scaler.step(opt) as for any optimizer without _step_supports_amp_scaling:
                    torch's unscale pass reads and writes every gradient, then our step
  fused             scaler.step(opt): torch's inf check reads every gradient once, our kernels
                    unscale as they read (no write of the gradients)

Under torch's contract for fused optimizers GradScaler.step runs its inf check first, and that
check is torch's unscale kernel with a scale of 1 (_amp_foreach_non_finite_check_and_unscale_):
it reads and writes every gradient, as the unscale does. So "fused" moves the same bytes as
"unfused" -- the table shows it, the "inf check" column is that pass alone.

The scale stays 1.0 (growth_interval huge) so the unfused pass leaves the gradients as they are
between repetitions; the work per element does not depend on the value. fp16 has no unfused
row: torch's unscale refuses fp16 gradients. Medians of 31 steps after one warm-up.

    HALIDE_LARS_LIB=bazel-bin/c_api/libhalide_lars.so PYTHONPATH=python \
        .venv/bin/python bench/amp_unscale.py
"""
import platform
import statistics
import time

import torch

import halide_lars

SHAPES = [(2048, 2048), (4096, 1024), (1024, 4096), (2048, 2048)]  # 16M elements


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def median_ms(fn, reps=31):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def main():
    torch.manual_seed(0)
    print(f"{cpu_name()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    print(f"{'grads':>6} {'step alone':>11} {'unfused':>9} {'fused':>9} {'inf check':>10} "
          f"{'saved':>8}")
    for dtype in (torch.float32, torch.bfloat16, torch.float16):
        params = [torch.nn.Parameter(torch.randn(s).to(dtype)) for s in SHAPES]
        for p in params:
            p.grad = (torch.randn_like(p, dtype=torch.float32) * 1e-3).to(dtype)
        opt = halide_lars.LARS(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
        scaler = torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=1 << 30)
        scaler.scale(torch.ones(()))  # creates the scale (a backward of scaled loss would)

        def scaled_step():
            scaler.step(opt)
            scaler.update()

        alone = median_ms(opt.step)
        fused = median_ms(scaled_step)
        check = median_ms(lambda: scaler._check_inf_per_device(opt))
        unfused = None
        if dtype != torch.float16:
            opt._step_supports_amp_scaling = False  # the path of any other optimizer
            unfused = median_ms(scaled_step)
            del opt._step_supports_amp_scaling
        name = str(dtype).replace("torch.", "")
        u = f"{unfused:9.1f}" if unfused is not None else f"{'refused':>9}"
        saved = f"{unfused - fused:6.1f}ms" if unfused is not None else f"{'-':>8}"
        print(f"{name:>6} {alone:9.1f}ms {u} {fused:9.1f} {check:10.1f} {saved}")


if __name__ == "__main__":
    main()
