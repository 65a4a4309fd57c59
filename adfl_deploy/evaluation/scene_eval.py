"""Run the pipeline on a generated scene and score it: one embedding x detector per row, so a
change of model, detector or association shows up as a number on the same ground truth.

``detector="gt"`` feeds the scene's ground-truth boxes instead of a detector (MOTChallenge's
"public detections" idea taken to the limit), which isolates re-identification and association
from detection.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

from adfl_deploy.assets import BASELINE_MODEL
from adfl_deploy.errors import OutputError
from adfl_deploy.evaluation import mtmc
from adfl_deploy.files import atomic_write_text
from adfl_deploy.pipeline import PipelineConfig, Summary, read_summary, run
from adfl_deploy.pipeline.output import read_manifest
from adfl_deploy.scene import Scene


@dataclass(frozen=True)
class Method:
    label: str
    model: str = ""  # "" = shipped ADFL edge model; an artefact folder; "colour-histogram"
    detector: str = "motion"  # "gt", "motion", "fastestdet" or a YOLO ONNX path


#: the demo's comparison: the shipped model with each detector, then three embeddings on
#: ground-truth boxes (re-identification alone)
DEFAULT_METHODS = [
    Method("ADFL edge model + motion detector", "", "motion"),
    Method("ADFL edge model + FastestDet (COCO)", "", "fastestdet"),
    Method("ADFL edge model + FastestDet + motion where it finds nobody", "", "fastestdet+motion-quarter"),
    Method("ADFL edge model + ground-truth boxes", "", "gt"),
    Method("baseline@resnet18 (no attention) + ground-truth boxes", str(BASELINE_MODEL), "gt"),
    Method("colour histogram + ground-truth boxes", "colour-histogram", "gt"),
]


#: model names ``--models`` takes -> (label, Method.model); anything else is an artefact folder
NAMED_MODELS = {
    "edge": ("ADFL edge model", ""),
    "baseline": ("baseline@resnet18", str(BASELINE_MODEL)),
    "colour-histogram": ("colour histogram", "colour-histogram"),
}


def methods_from_names(models: str, detections: str = "gt") -> list[Method]:
    """``"edge,baseline"`` x ``"gt,motion"`` -> one Method per model and detector (models outer)."""
    return [
        Method(f"{NAMED_MODELS.get(name, (name,))[0]} + {detector}", NAMED_MODELS.get(name, (name, name))[1], detector)
        for name in models.split(",")
        for detector in detections.split(",")
    ]


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


def pipeline_config(
    scene: Scene, method: Method, out: Path, base: PipelineConfig | None = None, write_videos: bool = False
) -> PipelineConfig:
    base = base or PipelineConfig()
    gt = method.detector == "gt"
    return dataclasses.replace(
        base,
        sources=scene.sources(),
        model=method.model,
        detector=base.detector if gt else method.detector,
        detections={cam: str(scene.gt(cam)) for cam in scene.cameras} if gt else {},
        out=str(out),
        write_videos=write_videos,
    )


def score_run(scene: Scene, run_dir: str | Path) -> mtmc.MtmcScore:
    """Score an ``adfl track`` output folder on ``scene``; its MOT files must be the ones its
    ``run.json`` says the run wrote (never an earlier run's files left beside them)."""
    run_dir = Path(run_dir)
    check_run_files(run_dir, scene.cameras)
    return mtmc.score(
        {cam: scene.gt(cam) for cam in scene.cameras}, {cam: run_dir / "mot" / f"{cam}.txt" for cam in scene.cameras}
    )


def check_run_files(run_dir: Path, cameras: list[str]) -> None:
    """One-line ``OutputError`` unless ``run_dir`` is one finished-or-running ``adfl track`` run
    that tracked every camera in ``cameras`` and whose summary (if any) is from the same run."""
    manifest = read_manifest(run_dir)
    if manifest is None:
        raise OutputError(f"{run_dir}: no run.json, so its MOT files cannot be tied to one run; re-run adfl track into it")
    missing = [cam for cam in cameras if cam not in manifest.get("cameras", [])]
    if missing:
        raise OutputError(
            f"{run_dir}: run {manifest.get('run_id')} tracked {', '.join(manifest.get('cameras', []))}, not "
            f"{', '.join(missing)}; "
            "mot files for those would be from another run"
        )
    if (run_dir / "summary.json").is_file():
        summary_run = read_summary(run_dir / "summary.json").run_id
        if summary_run != manifest.get("run_id"):
            raise OutputError(
                f"{run_dir}: summary.json is from run {summary_run}, run.json from {manifest.get('run_id')}; re-run adfl track"
            )


def row(label: str, score: mtmc.MtmcScore, summary: Summary) -> dict:
    return {
        "method": label,
        "embedder": summary.embedder,
        "match_threshold": summary.association["match_threshold"],
        "score": dataclasses.asdict(score),
        "fps_per_camera": summary.median_fps,
    }


def evaluate(
    scene: Scene,
    method: Method,
    out: Path,
    base: PipelineConfig | None = None,
    write_videos: bool = False,
    progress: bool = False,
) -> dict:
    summary = run(pipeline_config(scene, method, out, base, write_videos), progress=progress)
    result = row(method.label, score_run(scene, out), summary)
    atomic_write_text(out / "mtmc.json", json.dumps(result, indent=2) + "\n")
    return result


def markdown(rows: list[dict]) -> str:
    lines = [mtmc.MARKDOWN_HEADER]
    for r in rows:
        lines.append(
            mtmc.markdown_row(
                r["method"], mtmc.MtmcScore(**{**r["score"], "cameras": [mtmc.CameraScore(**c) for c in r["score"]["cameras"]]})
            )
        )
    return "\n".join(lines)
