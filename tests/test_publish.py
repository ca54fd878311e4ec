"""runtime/publish.py: folders built aside (cached models, held-out grown tasks) published in one rename."""

from pathlib import Path

from runtime.publish import publish_folder


def _built(tmp_path: Path, name: str, text: str) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "done.txt").write_text(text)
    return folder


def test_runs_building_one_folder_at_once_publish_it_once(tmp_path: Path) -> None:
    """Runs that build the same folder at once (seeds in parallel) each build in a folder of their own; the first to
    finish publishes, the other keeps that one; leftovers of an interrupted build are replaced."""
    folder = tmp_path / "key"
    publish_folder(_built(tmp_path, "key.tmp1", "first\n"), folder, marker="done.txt")
    publish_folder(_built(tmp_path, "key.tmp2", "second\n"), folder, marker="done.txt")
    assert (folder / "done.txt").read_text() == "first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key"]
    stale = tmp_path / "other"
    stale.mkdir()
    (stale / "build").mkdir()  # interrupted before its marker was written
    publish_folder(_built(tmp_path, "other.tmp3", "third\n"), stale, marker="done.txt")
    assert (stale / "done.txt").read_text() == "third\n" and not (stale / "build").exists()

