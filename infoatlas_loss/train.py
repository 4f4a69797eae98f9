"""Pretraining on the synthetic atlas: maximise the expected DV bound (paper Eq. 8).

Each step draws a batch of random distributions (``atlas.py``) and 2n samples of each; the
copula transform runs on all 2n, the hypernetwork sees the first n, and its critic is scored
on the other n (a fresh sample of the same distribution, so the network cannot memorise).

    python -m infoatlas_loss.train --minutes 120 --out runs/base               # one process
    torchrun --nproc_per_node 2 -m infoatlas_loss.train --minutes 120 ...      # DDP (gloo on CPU)

The learning rate follows a cosine over the *time* budget, so a run decays to the end of
the wall-clock it really has; ``--resume`` continues the schedule from the checkpoint.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
from tqdm import tqdm

from .atlas import gaussian_task, sample_atlas
from .config import InfoAtlasConfig
from .critic import canonical_order
from .estimator import dataset_seeds, dv_from_scores, estimate_batch, hash_weights, prepare
from .model import InfoAtlas
from .pretrained import save_weights

VAL_GRID = [(1, 1), (2, 2), (3, 3), (5, 5), (2, 4)]
VAL_MI = [0.0, 0.5, 1.0, 2.0]


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default="base", help="preset name")
    p.add_argument("--out", default="runs/base", help="folder for checkpoints and logs")
    p.add_argument("--minutes", type=float, default=60.0, help="wall-clock budget of the whole run")
    p.add_argument("--max-steps", type=int, default=None, help="stop after this many steps")
    p.add_argument("--batch", type=int, default=32, help="distributions per step per process")
    p.add_argument("--n-min", type=int, default=128)
    p.add_argument("--n-max", type=int, default=768)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ckpt-minutes", type=float, default=5.0)
    p.add_argument("--val-minutes", type=float, default=10.0)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--restart", action="store_true",
                   help="with --resume: keep the weights and optimiser but start a new warm-up + "
                        "cosine over --minutes (a warm restart); earlier time is kept as history")
    p.add_argument("--export", default=None, help="write EMA weights (safetensors) here at the end")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--export-only", action="store_true",
                   help="write the EMA weights of OUT/ckpt.pt to --export and exit")
    p.add_argument("--note", default=None,
                   help="with --export-only: training history to record in the file's header")
    return p.parse_args(argv)


def export_checkpoint(ckpt: str | Path, path: str | Path, info: dict | None = None) -> str:
    """EMA weights of a training checkpoint -> shipped safetensors file; returns sha256."""
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    model = InfoAtlas(InfoAtlasConfig.from_dict(json.loads(state["config"])))
    model.load_state_dict(state["ema"])
    minutes = (float(state["elapsed"]) + float(state.get("prior", 0.0))) / 60
    info = {"steps": int(state["step"]), "train_minutes": round(minutes, 1), **(info or {})}
    return save_weights(model, path, info=info)


@torch.no_grad()
def validate(model: InfoAtlas, *, n: int = 1000, reps: int = 2, seed: int = 123) -> dict:
    """Closed-form Gaussian grid: mean |error| (nats) and each cell's mean estimate."""
    g = torch.Generator().manual_seed(seed)
    md = model.config.max_dim
    rows = []
    for dx, dy in VAL_GRID:
        if max(dx, dy) > md:
            continue
        for mi in VAL_MI:
            x, y, true = gaussian_task(reps, n, dx, dy, mi, generator=g)
            dev = next(model.parameters()).device
            est = estimate_batch(model, x.to(dev), y.to(dev), seeds=dataset_seeds(reps, g)).mean().item()
            rows.append({"dx": dx, "dy": dy, "true": true, "est": round(est, 4)})
    mae = sum(abs(r["est"] - r["true"]) for r in rows) / len(rows)
    return {"mae": mae, "rows": rows}


def _lr(args, step: int, progress: float) -> float:
    """``step`` counts from the start of the current schedule."""
    warm = min(1.0, (step + 1) / args.warmup)
    return args.lr * warm * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def main(argv=None):
    args = _parse(argv)
    if args.export_only:
        info = {"note": args.note} if args.note else None
        print(export_checkpoint(Path(args.out) / "ckpt.pt", args.export, info=info))
        return
    ddp = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world = 0, 1
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{rank % torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu")
    torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // world))
    torch.manual_seed(args.seed)  # identical init on every rank
    out = Path(args.out)
    if rank == 0:
        out.mkdir(parents=True, exist_ok=True)

    config = InfoAtlasConfig.preset(args.config)
    model = InfoAtlas(config).to(device)
    ema = InfoAtlas(config).to(device).requires_grad_(False)
    ema.load_state_dict(model.state_dict())
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, elapsed, prior, step0 = 0, 0.0, 0.0, 0  # prior: seconds of earlier schedules
    ckpt = out / "ckpt.pt"
    if args.resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        step, elapsed = int(state["step"]), float(state["elapsed"])
        prior, step0 = float(state.get("prior", 0.0)), int(state.get("step0", 0))
        if args.restart:
            prior, elapsed, step0 = prior + elapsed, 0.0, step
    net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model
    g = torch.Generator().manual_seed(args.seed * 1000 + rank + 7919 * step)
    budget = args.minutes * 60.0
    log = open(out / "log.jsonl", "a") if rank == 0 else None
    bar = tqdm(total=int(budget), initial=int(elapsed), unit="s", disable=rank != 0,
               desc="pretraining", bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}s {postfix}")
    t0, last_ckpt, last_val, avg = time.time() - elapsed, time.time(), time.time(), None

    def checkpoint():
        if rank == 0:
            torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                        "step": step, "elapsed": time.time() - t0, "prior": prior, "step0": step0,
                        "config": json.dumps(config.to_dict())}, ckpt)

    while True:
        progress = torch.tensor([(time.time() - t0) / budget])
        if ddp:
            dist.broadcast(progress, 0)  # every rank follows rank 0's clock
        if progress.item() >= 1.0 or (args.max_steps is not None and step >= args.max_steps):
            break
        lr = _lr(args, step - step0, progress.item())
        for group in opt.param_groups:
            group["lr"] = lr
        dx, dy = (int(v) for v in torch.randint(1, config.max_dim + 1, (2,), generator=g))
        n = int(torch.randint(args.n_min, args.n_max + 1, (1,), generator=g))
        n = max(args.n_min, n - n % 32)  # few distinct shapes: keeps the allocator from fragmenting
        with torch.no_grad():
            x, y = sample_atlas(args.batch, 2 * n, dx, dy, generator=g)
            seeds = dataset_seeds(args.batch, g, device)
            zx, zy, _, real = prepare(x.to(device), y.to(device), config.max_dim, seeds=seeds)
            ex, ey = zx[:, n:], zy[:, n:]
            order = canonical_order(ex, ey, hash_weights(seeds + 1, 2 * config.max_dim))
        dv = dv_from_scores(net, zx[:, :n], zy[:, :n], eval_x=ex, eval_y=ey, order=order, real=real)
        loss = -dv.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - args.ema)
        step += 1
        avg = dv.mean().item() if avg is None else 0.98 * avg + 0.02 * dv.mean().item()
        if rank == 0:
            bar.n = int(time.time() - t0)
            bar.set_postfix(step=step, dv=f"{avg:.3f}", lr=f"{lr:.1e}", refresh=False)
            bar.refresh()
            if time.time() - last_val > args.val_minutes * 60:
                val = validate(ema)
                log.write(json.dumps({"step": step, "time": time.time() - t0, "dv": avg,
                                      "val_mae": val["mae"], "val": val["rows"]}) + "\n")
                log.flush()
                tqdm.write(f"step {step}: train DV {avg:.3f} nats, Gaussian val MAE {val['mae']:.3f}")
                last_val = time.time()
            if time.time() - last_ckpt > args.ckpt_minutes * 60:
                checkpoint()
                last_ckpt = time.time()
    checkpoint()
    bar.close()
    if rank == 0:
        val = validate(ema, reps=4)
        total = time.time() - t0
        summary = {"steps": step, "train_minutes": round((prior + total) / 60, 1), "processes": world,
                   "batch_per_process": args.batch, "n_range": [args.n_min, args.n_max],
                   "val_mae": round(val["mae"], 4), "val": val["rows"]}
        log.write(json.dumps({"final": summary}) + "\n")
        log.close()
        print(json.dumps({k: v for k, v in summary.items() if k != "val"}))
        if args.export:
            digest = save_weights(ema, args.export, info=summary)
            print(f"exported {args.export} sha256={digest}")
    if ddp:
        dist.barrier()  # rank 0 validates and exports first; tearing gloo down early aborts
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
