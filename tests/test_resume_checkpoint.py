"""Auto-resume picks the last COMPLETE checkpoint; one interrupted while saving is moved aside, not deleted."""

from types import SimpleNamespace

from pipeline.train import resume_checkpoint


def test_incomplete_checkpoint_is_moved_aside(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-6").mkdir()  # killed before trainer_state.json (written last) existed
    (tmp_path / "checkpoint-6" / "model.safetensors").write_bytes(b"partial")
    args = SimpleNamespace(resume_from_checkpoint=None, output_dir=str(tmp_path))
    assert resume_checkpoint(args, SimpleNamespace(auto_resume=True)) == str(tmp_path / "checkpoint-3")
    aside = [p.name for p in tmp_path.iterdir() if p.name.startswith("checkpoint-6.incomplete-")]
    assert len(aside) == 1 and (tmp_path / aside[0] / "model.safetensors").read_bytes() == b"partial"


def test_explicit_checkpoint_wins_and_auto_resume_can_be_off(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-3" / "trainer_state.json").write_text("{}")
    args = SimpleNamespace(resume_from_checkpoint="elsewhere/checkpoint-9", output_dir=str(tmp_path))
    assert resume_checkpoint(args, SimpleNamespace(auto_resume=True)) == "elsewhere/checkpoint-9"
    args.resume_from_checkpoint = None
    assert resume_checkpoint(args, SimpleNamespace(auto_resume=False)) is None
