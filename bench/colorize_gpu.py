"""GPU throughput: stage-2 training images/s (engine vs plain reference, same batch size, same
run) and inference images/s at 256x256. Needs only torch, torchvision, numpy, Pillow and
scikit-image.

    python bench/colorize_gpu.py [--batch 32 64] [--infer-batch 256] [--compile] [--json out.json]

Training steps use the real training code (``colorization.train._Trainer``): the engine gets
uint8 RGB batches and converts them to L*a*b* on the GPU inside the step, in bf16 autocast and
channels-last; the reference gets ready-made float32 L*a*b* tensors (its CPU colour conversion
is left out, which favours it) and runs in fp32 (PyTorch's default TF32 convolutions).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from colorization import lab  # noqa: E402
from colorization.networks import UNetGenerator, count_parameters  # noqa: E402
from colorization.train import TrainConfig, _lab_batch, _Trainer, build_models  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, warmup: int, iters: int, sync) -> float:
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    sync()
    return (time.perf_counter() - t0) / iters


def train_rate(recipe: str, batch: int, size: int, device: torch.device, iters: int, compile_: bool = False,
               head: str = "regression") -> float:
    """Stage-2 step rate: the pix2pix GAN step for both (``head="regression"``), or the engine's
    default chroma-classes step (``head="classes"``: cross-entropy, no discriminator)."""
    cfg = TrainConfig(recipe=recipe, crop_size=size, batch_size=batch, device=str(device), compile=compile_, head=head)
    gen, disc = build_models(cfg)
    tr = _Trainer(cfg, Path("/tmp"), device, gen, disc)
    rgb = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    if tr.engine:
        def step():
            L, ab = _lab_batch(rgb, device, True, tr.channels_last)
            tr.step(L, ab, 2)
    else:
        L0, ab0 = lab.uint8_batch_to_lab_normalized(rgb)
        batch_lab = (L0.contiguous(), ab0.contiguous())

        def step():
            L, ab = _lab_batch(batch_lab, device, False, False)
            tr.step(L, ab, 2)
    dt = _time(step, 5 if not compile_ else 8, iters, lambda: _sync(device))
    tr = gen = disc = step = None  # the closure holds the trainer: free the device memory now
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return batch / dt


def infer_rate(batch: int, size: int, device: torch.device, iters: int, end_to_end: bool, compile_: bool = False) -> float:
    gen = UNetGenerator().to(device, memory_format=torch.channels_last).eval()
    net = torch.compile(gen) if compile_ else gen
    rgb = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    L = lab.normalize_l(lab.uint8_to_l(rgb)).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run():
        if end_to_end:  # uint8 RGB in, uint8 RGB out: L, network, Lab -> RGB
            x = lab.normalize_l(lab.uint8_to_l(rgb)).contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16):
                ab = net(x)
            out = lab.lab_normalized_to_rgb(x, ab.float())
            return (out * 255 + 0.5).to(torch.uint8)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return net(L)

    dt = _time(run, 5, iters, lambda: _sync(device))
    return batch / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--infer-batch", type=int, default=256)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--device", default="cuda", help="cuda (cpu only to smoke-test this script)")
    args = ap.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("colorize_gpu.py needs a CUDA GPU")
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    print(f"device: {name}; torch {torch.__version__}; generator {count_parameters(UNetGenerator()) / 1e6:.1f}M params", flush=True)
    res: dict = {"device": name, "torch": torch.__version__, "train": [], "infer": []}
    for b in args.batch:
        ref = train_rate("reference", b, args.size, device, args.iters)
        eng = train_rate("engine", b, args.size, device, args.iters)
        row = {"batch": b, "reference": ref, "engine": eng, "speedup": eng / ref,
               "engine_classes": train_rate("engine", b, args.size, device, args.iters, head="classes")}
        if args.compile:
            row["engine_compiled"] = train_rate("engine", b, args.size, device, args.iters, compile_=True)
        res["train"].append(row)
        print(f"train b={b}: reference {ref:.0f} img/s, engine {eng:.0f} img/s ({eng / ref:.2f}x), engine with the "
              f"classes head {row['engine_classes']:.0f} img/s", flush=True)
    for e2e in (False, True):
        r = infer_rate(args.infer_batch, args.size, device, args.iters, e2e)
        row = {"what": "uint8 RGB -> RGB (L, network, Lab->RGB)" if e2e else "network only (bf16, channels-last)",
               "batch": args.infer_batch, "images_per_s": r}
        if args.compile:
            row["compiled"] = infer_rate(args.infer_batch, args.size, device, args.iters, e2e, compile_=True)
        res["infer"].append(row)
        print(f"infer {row['what']}: {r:.0f} img/s", flush=True)

    print(f"\nGPU: {name}, torch {torch.__version__}, {args.size}x{args.size}\n")
    comp = " engine + torch.compile |" if args.compile else ""
    print("| stage-2 training, batch | reference (fp32, fastai U-Net) img/s | engine GAN step (bf16, channels-last) "
          f"img/s | speed-up | engine, classes head (cross-entropy) img/s |{comp}")
    print("|---:|---:|---:|---:|---:|" + ("---:|" if args.compile else ""))
    for r in res["train"]:
        extra = f" {r['engine_compiled']:.0f} |" if args.compile else ""
        print(f"| {r['batch']} | {r['reference']:.0f} | {r['engine']:.0f} | {r['speedup']:.2f}x | "
              f"{r['engine_classes']:.0f} |{extra}")
    print(f"\n| inference at {args.size}², batch {args.infer_batch} | images/s |" + (" compiled |" if args.compile else ""))
    print("|---|---:|" + ("---:|" if args.compile else ""))
    for r in res["infer"]:
        extra = f" {r['compiled']:.0f} |" if args.compile else ""
        print(f"| {r['what']} | {r['images_per_s']:.0f} |{extra}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
