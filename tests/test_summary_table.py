"""The table `aqwen-run` prints at the end of a run: each eval's split, and a change only within one split."""

from runtime.pipeline.runner import format_summary


def _summary(*evals: tuple[str, str | None, float]) -> dict:
    stages = [{"name": n, "stage": "eval", "success_rate": s, "mean_reward": s / 2, **({"split": sp} if sp else {})}
              for n, sp, s in evals]
    stages.insert(1, {"name": "warmup", "stage": "sft", "checkpoint": "x"})
    first, last = stages[0], stages[-1]
    return {"stages": stages, "before": {k: first[k] for k in ("success_rate", "mean_reward")},
            "after": {k: last[k] for k in ("success_rate", "mean_reward")}}


def test_each_eval_row_names_its_split_and_the_change_is_within_one_split() -> None:
    text = format_summary(_summary(("before", "heldout", 0.0), ("after", "heldout", 0.25)))
    rows = text.splitlines()
    assert rows[0].split() == ["stage", "split", "success", "mean", "reward"]
    assert rows[2].split() == ["before", "held-out", "0.000", "0.000"]
    assert rows[-1].split() == ["change", "+0.250", "+0.125"]
    assert "warmup" not in text


def test_no_change_row_between_a_validation_and_a_held_out_eval() -> None:
    text = format_summary(_summary(("val", "validation", 0.3), ("after", "heldout", 0.1)))
    assert "change" not in text
    assert text.splitlines()[2].split()[:2] == ["val", "validation"]


def test_results_written_before_evals_recorded_their_split_read_as_held_out() -> None:
    text = format_summary(_summary(("before", None, 0.0), ("after", None, 0.5)))
    assert text.splitlines()[3].split()[:2] == ["after", "held-out"]
    assert "change" in text
