"""A model version with a description scorer (issue 13), the real thing end to end: a tiny BERT-XML fine-tuned on
synthetic notes whose rarer codes stay outside its label space, ``trainer fuse`` (all-MiniLM-L6-v2 description
scorer, training examples, kNN, fusion chosen on the selection split), ``trainer export`` (two graphs), then the
engine's NoteProcessor through onnxruntime and through the real tritonserver. Checked: the engine's fused scores
are PyTorch's (the trainer's own fusion of the same de-identified text), Triton and onnxruntime agree, and a code
the classifier never learnt is suggested with the sentence that matched it as evidence."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from engine.infra.model import load_runtime
from engine.pipeline.infer.local import LocalOnnxBackend
from engine.pipeline.processor import NoteProcessor
from engine.pipeline.types import ProcessedNote
from schemas.settings import EngineSettings, ModelSettings, TritonSettings
from tests.fixtures.docref import document_reference, source_record
from tests.fixtures.models import finetune_tiny

CLOCK = dt.datetime(2026, 11, 29, 6, 0, 0, tzinfo=dt.timezone.utc)
MODEL = "bert_xml"
MIN_POSITIVES = 8  # the synthetic notes' rarer codes stay outside the label space
NOTES = 12


@pytest.fixture(scope="module")
def fused_run(tmp_path_factory, synthetic_notes, tiny_tokenizer_dir):
    from trainer.data.dataset import load_label_space, load_split
    from trainer.data.prepare import PrepareConfig, prepare_dataset
    from trainer.describe.fuse import FuseOptions, fuse_run
    from trainer.describe.tune import TuneOptions

    data = tmp_path_factory.mktemp("fused_dataset")
    prepare_dataset(PrepareConfig(out=data, synthetic=len(synthetic_notes), seed=0, deid=False, show_progress=False, min_train_positives=MIN_POSITIVES))
    run = finetune_tiny(data, tiny_tokenizer_dir, tmp_path_factory.mktemp("fused_run") / "run")
    labels = load_label_space(data)
    outside = sorted({c for r in load_split(data, "train") for c in r.codes} - set(labels.codes))
    assert outside, "the fixture needs codes outside the label space"
    # candidates: the label space plus every other code of the training notes (fuse_run adds them; the served
    # model also has every billable code)
    # a few tuning steps: the exported scorer must carry the tuned encoder, not the shipped one
    fuse_run(run, data, FuseOptions(candidates="labels", progress=False, tune=TuneOptions(max_steps=4)))
    return run, data, set(labels.codes)


@pytest.fixture(scope="module")
def fused_repo(fused_run, tmp_path_factory):
    from trainer.export.repository import ExportOptions, export_model

    repo = tmp_path_factory.mktemp("fused_repository")
    export_model(fused_run[0], repo, ExportOptions(name=MODEL, variants=("cpu-python",)))
    return repo


@pytest.fixture(scope="module")
def records(fused_run):
    from trainer.data.dataset import load_split

    notes = load_split(fused_run[1], "test")[:NOTES]
    return [source_record(document_reference(r.text, f"doc-{i}"), offset=i) for i, r in enumerate(notes)]


def _process(repo, records, triton_url: str | None = None) -> list[ProcessedNote]:
    settings = EngineSettings(model=ModelSettings(repository=repo), triton=TritonSettings(url=triton_url, model_name=MODEL) if triton_url else TritonSettings())
    runtime = load_runtime(repo, MODEL)
    assert runtime.descriptions is not None, "the exported version carries its description scorer"
    if triton_url:
        from engine.pipeline.infer.triton import TritonBackend

        backend = TritonBackend(settings.triton, runtime.metadata.version, evidence=True)
    else:
        backend = LocalOnnxBackend(runtime.onnx_path)
    processor = NoteProcessor(runtime, backend, settings, clock=lambda: CLOCK)  # scorer backend: the same kind (describe.make_scorer_backend)
    try:
        results = processor.process_batch(records)
    finally:
        processor.close()
    assert all(isinstance(r, ProcessedNote) for r in results), [r for r in results if not isinstance(r, ProcessedNote)]
    return results


@pytest.fixture(scope="module")
def local_results(fused_repo, records):
    return _process(fused_repo, records)


def test_engine_fuses_as_pytorch(fused_run, local_results):
    """The engine's fused score map (onnxruntime, schemas.fusion) equals the trainer's fusion in PyTorch on the
    engine's de-identified text: same scores, same order."""
    from trainer.describe.build import score_with
    from trainer.describe.fuse import load_descriptions
    from trainer.describe.select import Components, label_candidates
    from trainer.models.scorer import load_scorer

    run = fused_run[0]
    texts = [r.deid_text for r in local_results]
    model = load_descriptions(run)
    classifier = load_scorer(run, progress=False)
    columns = label_candidates(classifier.labels.codes, model.catalogue.codes)
    components = Components(model.catalogue.codes, score_with(model.scorer, texts, model.tokenizer, progress=False), model.neighbours,
                            classifier.score(texts), columns)
    reference = components.fused(model.fusion.served)
    index = {c: j for j, c in enumerate(model.catalogue.codes)}
    compared = 0
    for i, result in enumerate(local_results):
        assert result.scores, "every note has scored codes"
        for code, score in result.scores.items():
            assert score == pytest.approx(float(reference[i, index[code]]), abs=2e-3), (i, code)
            compared += 1
        top = [model.catalogue.codes[j] for j in np.argsort(-reference[i], kind="stable")[:3]]
        engine_top = list(result.scores)[:3]
        gaps = np.diff(np.sort(reference[i])[::-1][:4])
        if np.all(np.abs(gaps) > 5e-3):  # no near-ties at the top: the order must be the same
            assert engine_top == top
    assert compared >= NOTES


def test_the_version_names_its_tuned_sentence_encoder(fused_run, fused_repo):
    """The tuned encoder is saved with the run and named in metadata.json (the parity test above runs it)."""
    from trainer.describe.fuse import load_descriptions
    from trainer.describe.model import TUNED_ENCODER_NAME

    fusion = load_descriptions(fused_run[0]).fusion
    assert fusion.encoder_tuning is not None and fusion.encoder_tuning.steps == 4
    assert (fused_run[0] / "descriptions" / "encoder" / "config.json").is_file()
    assert load_runtime(fused_repo, MODEL).metadata.description_scorer.encoder == TUNED_ENCODER_NAME


def test_a_code_outside_the_label_space_is_suggested_with_its_sentence(fused_run, local_results):
    label_space = fused_run[2]
    found = [(r, s) for r in local_results for s in r.suggestions if s.code not in label_space]
    assert found, "the description scorer suggests codes the classifier never learnt"
    for result, suggestion in found:
        assert suggestion.evidence, suggestion.code
        text = result.note.text
        for span in suggestion.evidence:
            sentence = text[span.start : span.end]
            assert sentence.strip() and len(sentence) <= len(text)
    bundle = found[0][0].bundle_json.decode()
    assert found[0][1].code in bundle  # carried into the FHIR Condition like any suggestion


def test_triton_serves_the_same_fused_suggestions(fused_repo, records, local_results, tmp_path_factory):
    from bench.devservers.triton import start_triton

    server = start_triton(fused_repo, tmp_path_factory.mktemp("fused_triton"))
    try:
        remote = _process(fused_repo, records, server.grpc_url)
    finally:
        server.stop()
    for a, b in zip(local_results, remote):
        assert list(a.scores) == list(b.scores) or set(a.scores) == set(b.scores)
        assert all(a.scores[c] == pytest.approx(b.scores[c], abs=1e-3) for c in a.scores)
        assert [s.code for s in a.suggestions] == [s.code for s in b.suggestions]


def test_a_failed_scorer_export_leaves_no_staging_directory(fused_run, tmp_path, monkeypatch):
    """Triton loads every directory of a repository, hidden ones too: a half-written scorer must not stay."""
    from trainer.export import descriptions
    from trainer.export.repository import ExportOptions, export_model

    def refuse(*_):
        raise ValueError("the exported description scorer ranks codes differently from PyTorch")

    monkeypatch.setattr(descriptions, "check_scorer_parity", refuse)
    with pytest.raises(ValueError, match="ranks codes differently"):
        export_model(fused_run[0], tmp_path, ExportOptions(name=MODEL, variants=("cpu-python",)))
    assert list(tmp_path.iterdir()) == []
