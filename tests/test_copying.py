"""Copy pre-training (runtime/training/copying.py): synthetic copy data, and a small model that learns to copy."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from runtime.training.copying import CopyCurriculum, copy_accuracy, copy_batch, pretrain_copying  # noqa: E402

SMALL = CopyCurriculum(short_length=24, short_batch=16, short_span=(4, 10), max_short_steps=1500, target=0.8,
                       check_every=50, long_length=64, long_batch=4, long_spans=4, long_span=(3, 8), long_steps=20)


def test_every_labelled_token_follows_an_earlier_occurrence_of_its_predecessor() -> None:
    """A labelled token is what an induction head predicts: the one after an earlier occurrence of the token
    before it; labels are ids (or -100), and ids stay within [low, high)."""
    ids, labels = copy_batch(torch.Generator().manual_seed(1), 8, 96, 3, (3, 12), 10, 50)
    assert ids.min() >= 10 and ids.max() < 50
    labelled = (labels != -100).nonzero().tolist()
    assert len(labelled) >= 8 * 2  # every row has copied tokens
    for row, i in labelled:
        assert labels[row, i] == ids[row, i]
        seq = ids[row].tolist()
        assert any(seq[j - 1] == seq[i - 1] and seq[j] == seq[i] for j in range(1, i - 1))
    assert (labels[:, 0] == -100).all()


def _small_model(vocab: int):  # type: ignore[no-untyped-def]
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=vocab, hidden_size=32, intermediate_size=96, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=256,
                         tie_word_embeddings=True)
    return Qwen3ForCausalLM(config).eval()


def test_copy_pretraining_teaches_a_random_model_to_copy() -> None:
    torch.set_num_threads(1)
    model = _small_model(32)
    check = copy_batch(torch.Generator().manual_seed(99), 32, 24, 1, (4, 10), 4, 32)
    before = copy_accuracy(model, *check)
    report = pretrain_copying(model, 4, 32, seed=0, curriculum=SMALL)
    after = copy_accuracy(model, *check)
    assert before < 0.15  # chance is 1 in 28
    assert after > 0.5, report
    assert report["short_steps"] < SMALL.max_short_steps  # reached the target, stopped early
    assert report["long_steps"] == SMALL.long_steps and report["long_accuracy"] > 0.15


def test_a_copy_pretrained_tiny_model_starts_from_a_shared_core_and_records_it(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Copy pre-training knows no text, so two corpora's tiny models start from one cached core (their tokenizers'
    ids index its first rows), and each records what the core reached."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from runtime.training.models import build_tiny_qwen3, cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    quick = CopyCurriculum(short_length=16, short_batch=2, short_span=(2, 4), max_short_steps=2, check_every=1,
                           long_length=32, long_batch=1, long_spans=2, long_span=(2, 4), long_steps=1)
    shape = {"vocab": 400, "hidden": 16, "layers": 1, "heads": 2}
    corpora = {"a": ["Please put Ben Okafor (T-2) on work order WO-1016."] * 20,
               "b": ["Ship 3 pallets of part P-77 to dock D-4 by noon, please."] * 20}
    folders = {k: build_tiny_qwen3(tmp_path / k, text, **shape, copy_pretraining=quick) for k, text in corpora.items()}
    [core] = list(cache_dir().glob("copy-core-*"))
    core_embedding = AutoModelForCausalLM.from_pretrained(str(core)).get_input_embeddings().weight
    for folder in folders.values():
        report = json.loads((folder / "copy_pretraining.json").read_text())
        assert report["core"] == core.name and report["short_steps"] == 2 and report["long_steps"] == 1
        model = AutoModelForCausalLM.from_pretrained(str(folder))
        rows = len(AutoTokenizer.from_pretrained(str(folder)))
        assert model.config.vocab_size == rows <= 400
        assert torch.equal(model.get_input_embeddings().weight, core_embedding[:rows])
    plain = build_tiny_qwen3(tmp_path / "plain", corpora["a"], **shape)
    assert not (plain / "copy_pretraining.json").exists()


def test_the_tiny_models_options_are_part_of_its_cache_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model built with other options is another model: a cached plain build is never taken for a copy-pretrained
    one (nor one copy curriculum for another), and the plain build keeps the key it had."""
    from runtime.training import models

    built: list[tuple[str, dict]] = []
    monkeypatch.setattr(models, "build_tiny_qwen3", lambda folder, texts, **kw: built.append((folder.name, kw)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    for options in ({}, {"id_prefixes": True}, {"copy_pretraining": CopyCurriculum()},
                    {"copy_pretraining": CopyCurriculum(long_steps=5)}, {}):
        models.resolve_model("builtin:tiny-qwen3", ["some text"], **options)  # type: ignore[arg-type]
    names = [name for name, _ in built]
    assert len(set(names)) == 4 and names[0] == names[-1]
    assert built[2][1]["copy_pretraining"] == CopyCurriculum()


def test_aqwen_run_says_what_the_copy_core_reached_and_warns_when_it_never_copied() -> None:
    from runtime.pipeline.run import _copy_summary

    report = {"core": "copy-core-x", "short_steps": 700, "long_steps": 200, "short_accuracy": 0.9,
              "long_accuracy": 0.89, "curriculum": CopyCurriculum().__dict__}
    assert _copy_summary(report) == ("copy core copy-core-x: copies 0.90 of the 64-token check and 0.89 at 512 "
                                     "tokens after 700 + 200 steps")
    assert _copy_summary({**report, "shipped": True}).startswith("copy core copy-core-x (shipped with the package): ")
    stuck = _copy_summary({**report, "short_steps": 3000, "short_accuracy": 0.01, "long_accuracy": 0.0})
    assert "warning: the copy core stayed below 0.80" in stuck and "short_steps" in stuck


def test_the_default_pipelines_copy_core_ships_with_the_package(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The default pipeline's core (built-in shape, default curriculum, seed 0) is shipped, so a fresh machine uses it
    instead of training one; it still copies, and ``AQWEN_SHIPPED_CORES=0`` builds instead. (A change of the recipe,
    the shape or the curriculum changes the key: this test then fails until the shipped core is rebuilt.)"""
    import runtime.training.copying as copying
    from aqwen_spec.documents.pipeline import ModelSpec
    from runtime.training.models import SHIPPED_CORES, SPECIAL_TOKENS, copy_core, resolve_pipeline_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained a core instead of using the shipped one")

    monkeypatch.setattr(copying, "pretrain_copying", no_training)
    folder = resolve_pipeline_model(ModelSpec(name="builtin:tiny-qwen3", copy_pretraining={}),
                                    ["Please close work order WO-1016."] * 5, seed=0)
    report = json.loads((Path(folder) / "copy_pretraining.json").read_text())
    assert report["shipped"] is True and (SHIPPED_CORES / report["core"]).is_dir()
    assert report["short_accuracy"] >= report["curriculum"]["target"]
    core = copy_core(4096, 0, CopyCurriculum())
    assert core == SHIPPED_CORES / report["core"]

    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(str(core)).eval()
    checks = torch.Generator().manual_seed(12345)  # fresh draws, not the curriculum's check batches
    c, low = CopyCurriculum(), len(SPECIAL_TOKENS)  # the ids the core was trained on: [low, 4096)
    assert copy_accuracy(model, *copy_batch(checks, 32, c.short_length, 1, c.short_span, low, 4096)) > 0.8
    assert copy_accuracy(model, *copy_batch(checks, 4, c.long_length, c.long_spans, c.long_span, low, 4096)) > 0.8

    monkeypatch.setenv("AQWEN_SHIPPED_CORES", "0")
    with pytest.raises(AssertionError, match="trained a core"):
        copy_core(4096, 0, CopyCurriculum())
