"""The edge model that ships with the package: intact, torch-free, and better than a colour
histogram on the held-out Con-ReID identities."""

from __future__ import annotations

import numpy as np

from adfl_deploy.assets import EDGE_MODEL, load_sample_crops, sample_crop_labels
from adfl_deploy.evaluation.datasets import load_dataset
from adfl_deploy.evaluation.reid import evaluate
from adfl_deploy.model.artifact import load_artifact
from adfl_deploy.runtime.colour_histogram import colour_histogram
from adfl_deploy.runtime.embedder import Embedder


def test_artefact_is_intact_and_small():
    info = load_artifact(EDGE_MODEL)  # verifies the sha256 of the ONNX file
    assert info.precision == "int8" and info.embedding_dim == 768
    assert (EDGE_MODEL / info.onnx).stat().st_size < 15 * 2**20
    assert (EDGE_MODEL / "MODEL_CARD.md").is_file()


def test_embeddings_are_unit_vectors_and_match_people_across_cameras():
    emb = Embedder.from_artifact(EDGE_MODEL).embed(load_sample_crops())
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    labels = sample_crop_labels()
    pids = np.array([p for p, _ in labels])
    sim = emb @ emb.T
    same = pids[:, None] == pids[None, :]
    off_diagonal = ~np.eye(len(pids), dtype=bool)
    assert sim[same & off_diagonal].mean() > sim[~same].mean() + 0.2


def test_shipped_model_beats_the_colour_histogram_on_held_out_ids(shared):
    dataset = load_dataset("market-style", shared / "data" / "con-reid")
    model = evaluate(Embedder.from_artifact(EDGE_MODEL).embed, dataset).metrics
    histogram = evaluate(colour_histogram, dataset).metrics
    assert model["rank1"] >= histogram["rank1"]
    assert model["mAP"] > histogram["mAP"]


def test_a_pipeline_embedder_sleeps_between_calls_and_embeds_the_same(monkeypatch):
    """``spinning=False`` (what the pipeline asks for) sets ONNX Runtime's documented session
    entry so its threads sleep between calls; the embeddings do not change."""
    import onnxruntime as ort

    made = []
    real = ort.InferenceSession

    def recording(path, options=None, **kwargs):
        made.append(options)
        return real(path, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    crops = load_sample_crops()[:4]
    sleeping = Embedder.from_artifact(EDGE_MODEL, backend="onnxruntime-cpu", spinning=False)
    spinning = Embedder.from_artifact(EDGE_MODEL, backend="onnxruntime-cpu")

    def spinning_entry(options) -> str | None:
        try:
            return options.get_session_config_entry("session.intra_op.allow_spinning")
        except Exception:  # noqa: BLE001 - ONNX Runtime raises for an entry never set
            return None

    assert [spinning_entry(o) for o in made] == ["0", None]
    np.testing.assert_allclose(sleeping.embed(crops), spinning.embed(crops), atol=1e-6)


def test_the_shipped_models_load_by_name_unless_a_folder_of_that_name_is_here(tmp_path, monkeypatch):
    from adfl_deploy.assets import BASELINE_MODEL
    from adfl_deploy.runtime.embedder import artifact_folder, create_embedder
    from adfl_deploy.store.model import fingerprint

    assert create_embedder("baseline").name == "baseline@resnet18"  # as `adfl mtmc --models` names it
    assert artifact_folder("edge") == EDGE_MODEL and artifact_folder("") == EDGE_MODEL
    assert fingerprint("baseline").path == str(BASELINE_MODEL.resolve())
    monkeypatch.chdir(tmp_path)
    (tmp_path / "baseline").mkdir()  # the user's own export called "baseline"
    assert artifact_folder("baseline") == tmp_path.joinpath("baseline").relative_to(tmp_path)
