"""``build_dataset``: the recipe's data section -> a ``DatasetDict`` {video, label, group} of any supported source,
or, for streamed sources (webdataset shards, ``hf`` with ``streaming``), an ``IterableDatasetDict`` of the same
columns plus ``video_info`` (``pipeline.data.streaming``)."""

from __future__ import annotations

import logging
from datasets import DatasetDict, IterableDatasetDict

logger = logging.getLogger(__name__)

SOURCES = ("ucf101", "demo", "videofolder", "hf", "webdataset")


def build_dataset(data_args) -> DatasetDict | IterableDatasetDict:
    """Dispatches on ``data_args.dataset``; the demo is generated (once, cached) when it is missing."""
    kind = data_args.dataset
    if kind not in SOURCES:
        raise ValueError(f"unknown dataset '{kind}': choose one of {', '.join(SOURCES)}")
    if kind in ("ucf101", "demo"):
        from .ucf101 import load_ucf101

        root = data_args.dataset_dir
        if kind == "demo":
            from .demo import DEFAULT_DIR, ensure_demo_dataset

            # a complete demo folder (even one with deliberately broken files) is used as it is
            root = ensure_demo_dataset(root or DEFAULT_DIR, seed=0)
        if not root:
            raise ValueError("dataset_dir is required for dataset 'ucf101' (the folder holding UCF-101/)")
        return load_ucf101(
            root,
            split=data_args.ucf101_split,
            splits_dir=data_args.splits_dir,
            validation_fraction=data_args.validation_fraction,
            seed=data_args.split_seed,
            # "skip": the missing rows stay until probing, which leaves them out and counts them as skipped
            on_missing="keep" if data_args.on_missing_video == "skip" else data_args.on_missing_video,
        )
    if not data_args.dataset_dir:
        raise ValueError(f"dataset_dir is required for dataset '{kind}'")
    if kind == "webdataset":
        from .streaming import load_webdataset

        return load_webdataset(data_args.dataset_dir)
    if kind == "hf" and getattr(data_args, "streaming", False):
        from .streaming import load_hf_stream

        return load_hf_stream(data_args.dataset_dir, video_column=data_args.video_column,
                              label_column=data_args.label_column)
    if kind == "videofolder":
        from .videofolder import load_video_folder

        return load_video_folder(
            data_args.dataset_dir,
            validation_fraction=data_args.validation_fraction,
            test_fraction=data_args.test_fraction,
            seed=data_args.split_seed,
        )
    from .hf_video_dataset import load_hf_video_dataset

    return load_hf_video_dataset(
        data_args.dataset_dir,
        video_column=data_args.video_column,
        label_column=data_args.label_column,
        validation_fraction=data_args.validation_fraction,
        test_fraction=data_args.test_fraction,
        seed=data_args.split_seed,
    )

