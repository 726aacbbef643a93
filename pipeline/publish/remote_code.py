"""The code a model folder carries so that ``transformers.pipeline(..., trust_remote_code=True)`` runs our
pipeline where this package is not imported (a local run folder and its Hub copy alike).

- the PyAV ``video-classification`` pipeline (``video_pipeline.py`` and the modules it imports relatively:
  views, decoding, sampling, preprocessing, model_inputs, frame_count, clip_spec), declared in ``config.json`` as
  ``custom_pipelines``; a video-text model (X-CLIP) gets the ``zero-shot-video-classification`` pipeline
  (``zero_shot_pipeline.py`` and its imports) instead;
- the model code of architectures transformers does not ship (I3D): the files ``config.json``'s ``auto_map``
  names, which ``save_pretrained`` writes and which are copied from this package when missing.

transformers asks for ``trust_remote_code=True`` for any folder whose config declares a custom pipeline, even
after ``import pipeline``; code that must not need it passes the class itself (``pipeline.inference.load_pipeline``,
``python -m pipeline.predict``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Optional

from transformers.dynamic_module_utils import get_relative_import_files

PIPELINE_TASK = "video-classification"
PACKAGE_DIR = Path(__file__).resolve().parents[1]
PIPELINE_MODULE = PACKAGE_DIR / "inference" / "video_pipeline.py"
PIPELINE_CLASS = "PyAVVideoClassificationPipeline"
MODELS_DIR = PACKAGE_DIR / "models"
# video-text models (no classifier head) publish the zero-shot pipeline instead: (task, module, class, Auto class)
ZERO_SHOT_PIPELINE = ("zero-shot-video-classification", PACKAGE_DIR / "inference" / "zero_shot_pipeline.py",
                      "ZeroShotVideoClassificationPipeline", "AutoModel")
ZERO_SHOT_MODEL_TYPES = ("xclip",)


def _is_zero_shot(model_type: Optional[str]) -> bool:
    return model_type in ZERO_SHOT_MODEL_TYPES


def custom_pipelines_entry(model_type: Optional[str] = None) -> dict[str, Any]:
    """``config.custom_pipelines`` naming our pipeline for ``model_type`` (a classifier's video-classification, a
    video-text model's zero-shot-video-classification), in the format Pipeline.save_pretrained writes."""
    if _is_zero_shot(model_type):
        task, module, name, auto_class = ZERO_SHOT_PIPELINE
        return {task: {"impl": f"{module.stem}.{name}", "pt": [auto_class], "type": "multimodal"}}
    return {PIPELINE_TASK: {"impl": f"{PIPELINE_MODULE.stem}.{PIPELINE_CLASS}",
                            "pt": ["AutoModelForVideoClassification"], "type": "video"}}


def pipeline_code_files(model_type: Optional[str] = None) -> list[Path]:
    """The pipeline module for ``model_type`` and the siblings it imports relatively (recursively): what
    transformers fetches."""
    module = ZERO_SHOT_PIPELINE[1] if _is_zero_shot(model_type) else PIPELINE_MODULE
    return [module] + sorted(Path(p) for p in get_relative_import_files(str(module)))


def model_code_files(model_dir: Path, config: dict) -> list[Path]:
    """Modules named by ``config.auto_map`` and their relative imports: from the folder, else this package."""
    needed: list[Path] = []
    for reference in (config.get("auto_map") or {}).values():
        references = reference if isinstance(reference, (list, tuple)) else [reference]
        for ref in references:
            if not ref or "--" in ref:  # "repo--module.Class" points to code in another repo
                continue
            module_file = f"{ref.rsplit('.', 1)[0]}.py"
            local = model_dir / module_file
            source = local if local.is_file() else next(iter(sorted(MODELS_DIR.rglob(module_file))), None)
            if source is None:
                raise FileNotFoundError(
                    f"{model_dir / 'config.json'}: auto_map names {ref} but {module_file} is neither in the "
                    f"folder nor in {MODELS_DIR}")
            for path in [source] + [Path(p) for p in get_relative_import_files(str(source))]:
                if path.name not in {p.name for p in needed}:
                    needed.append(path)
    return needed


def remote_code_files(model_dir: str | Path) -> list[Path]:
    """Every code file the folder's model needs as remote code: its pipeline and its model's modules."""
    model_dir = Path(model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    return pipeline_code_files(config.get("model_type")) + model_code_files(model_dir, config)


def write_remote_code(model_dir: str | Path) -> list[Path]:
    """Copies the remote code into ``model_dir`` and names the pipeline in its ``config.json``
    (``custom_pipelines``), as the Hub copy has them; returns the files written."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    written = []
    for source in remote_code_files(model_dir):
        destination = model_dir / source.name
        if source.resolve() != destination.resolve():
            shutil.copyfile(source, destination)
            written.append(destination)
    config = json.loads(config_path.read_text())
    config["custom_pipelines"] = custom_pipelines_entry(config.get("model_type"))
    temporary = config_path.with_name(config_path.name + ".tmp")
    temporary.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    temporary.replace(config_path)  # never a half-written config.json
    return written + [config_path]
