"""What one association tick costs as the number of known identities grows.

A tick compares its embeddings with every identity's gallery in one matrix product, used for
matching and for the merge check. Counted work per tick: ``tracklets x identities x gallery x
dim`` multiply-adds, and the whole gallery bank (``identities x gallery x dim`` float32) read
once from memory - with a handful of tracklets per tick that read, not the arithmetic, is the
floor. Everything else (feasibility, Hungarian) runs only on the few identities within the match
threshold. A 10 FPS camera gives a tick 100 ms, all stages included.

The identities are synthetic (random unit vectors of the edge model's 768 dimensions, seen in
4 cameras within the last 10 minutes, so none retire), which is the worst case for the
threshold prefilter: nothing is close, everything must be compared.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from adfl_deploy.association.associator import AssociationConfig, Associator, Identity, Tracklet


@dataclass(frozen=True)
class AssociationBenchConfig:
    identities: tuple[int, ...] = (100, 1000, 10000)
    dim: int = 768
    cameras: int = 4
    #: new tracklets per tick (a person entering each camera, twice)
    new_per_tick: int = 8
    #: tracklets of already-named tracks per tick (re-embedded by the schedule)
    known_per_tick: int = 8
    ticks: int = 40
    seed: int = 0


def _unit(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def populated(n: int, cfg: AssociationBenchConfig, rng: np.random.Generator) -> Associator:
    """An associator that already knows ``n`` identities with full galleries."""
    assoc = Associator(AssociationConfig(match_threshold=0.4))
    size = assoc.config.gallery_size
    for gid in range(1, n + 1):
        cam = f"cam{gid % cfg.cameras}"
        assoc.identities[gid] = Identity(gid, {cam: (None, float(rng.uniform(0, 600)))})
        assoc.bank.add(gid, _unit(rng, size, cfg.dim))
        assoc.global_ids.add(gid)
    assoc._ids = iter(range(n + 1, 10**9))
    return assoc


def measure(n: int, cfg: AssociationBenchConfig) -> dict:
    rng = np.random.default_rng(cfg.seed)
    assoc = populated(n, cfg, rng)
    size = assoc.config.gallery_size
    live = []  # (camera, track) already named, re-embedded each tick
    times = []
    now = 600.0
    track = 10**6
    for _tick in range(cfg.ticks):
        now += 0.1
        new = []
        for _ in range(cfg.new_per_tick):
            track += 1
            new.append(Tracklet(f"cam{track % cfg.cameras}", track, _unit(rng, 1, cfg.dim)[0], now))
        known = [Tracklet(c, t, _unit(rng, 1, cfg.dim)[0], now) for c, t in live[-cfg.known_per_tick :]]
        t0 = time.perf_counter()
        assoc.associate(known + new)
        times.append(1000 * (time.perf_counter() - t0))
        live += [(t.camera, t.track_id) for t in new]
    identities = len(assoc.identities)
    per_tick = cfg.new_per_tick + cfg.known_per_tick
    macs = per_tick * identities * size * cfg.dim
    bank_bytes = identities * size * cfg.dim * 4
    p50 = float(np.median(times))
    return {
        "identities": n,
        "identities_at_end": identities,
        "tick_ms_p50": p50,
        "tick_ms_p99": float(np.percentile(times, 99)),
        "gmac_per_tick": macs / 1e9,
        "gmac_per_s_at_p50": macs / 1e9 / (p50 / 1000),
        "bank_mb": bank_bytes / 1e6,
        "bank_gb_per_s_at_p50": bank_bytes / 1e9 / (p50 / 1000),
        "fits_10fps_tick": float(np.percentile(times, 99)) < 100.0,
    }


def run_benchmark(cfg: AssociationBenchConfig = AssociationBenchConfig()) -> dict:
    return {"config": asdict(cfg), "rows": [measure(n, cfg) for n in cfg.identities]}


def markdown(report: dict) -> str:
    cfg = report["config"]
    lines = [
        f"association tick: {cfg['new_per_tick']} new + {cfg['known_per_tick']} known tracklets, {cfg['dim']}-d "
        "embeddings, galleries of 10",
        "| identities | tick p50 ms | tick p99 ms | GMAC per tick | GMAC/s at p50 | gallery bank MB | bank read "
        "GB/s at p50 | p99 < 100 ms |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['identities']} | {r['tick_ms_p50']:.2f} | {r['tick_ms_p99']:.2f} | {r['gmac_per_tick']:.2f} | "
            f"{r['gmac_per_s_at_p50']:.1f} | "
            f"{r['bank_mb']:.0f} | {r['bank_gb_per_s_at_p50']:.1f} | "
            f"{'yes' if r['fits_10fps_tick'] else 'no'} |"
        )
    return "\n".join(lines)
