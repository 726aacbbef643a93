"""Reads a streamed train split through the Trainer's own data loader in every rank, and records what each rank got.

Launched like training (``accelerate launch --config_file accelerate_configs/cpu_ddp.yaml tests/stream_ddp_worker.py
SHARDS OUT``). The loader is built exactly as in a streamed run (``prepare_for_trainer`` then
``Trainer.get_train_dataloader``: accelerate's per-rank sharding, two loader workers, the shuffle buffer), with a
transform that yields each video's name instead of its frames. Two epochs are read as the Trainer reads them
(``set_epoch`` first); rank 0 writes ``OUT/routing.json``: per rank, the names of each epoch and ``max_steps``.
"""

import json
import sys
from pathlib import Path

import torch
from accelerate.utils import gather_object
from transformers import Trainer, TrainingArguments

from pipeline.configs import DataArguments
from pipeline.data.streaming import load_webdataset, prepare_for_trainer

EPOCHS = 2
BATCH = 3


def names(batch):
    return {"name": [video["path"] for video in batch["video"]]}


def main(shards: str, out: str) -> None:
    args = TrainingArguments(output_dir=f"{out}/trainer", use_cpu=True, per_device_train_batch_size=BATCH,
                             dataloader_num_workers=2, dataloader_persistent_workers=True,
                             num_train_epochs=EPOCHS, report_to=[], remove_unused_columns=False)
    data_args = DataArguments(dataset="webdataset", dataset_dir=shards, shuffle_buffer_size=8)
    loader_sets = prepare_for_trainer(load_webdataset(shards), data_args, args, names)
    trainer = Trainer(model=torch.nn.Linear(1, 1), args=args, train_dataset=loader_sets["train"],
                      data_collator=lambda rows: {"names": [row["name"] for row in rows]})
    loader = trainer.get_train_dataloader()
    epochs = []
    for epoch in range(EPOCHS):
        loader.set_epoch(epoch)  # as the Trainer does before each epoch
        epochs.append([[name for name in batch["names"]] for batch in loader])
    record = {"rank": args.process_index, "world_size": args.world_size, "epochs": epochs,
              "max_steps": args.max_steps}
    gathered = gather_object([record])
    if args.process_index == 0:
        Path(out, "routing.json").write_text(json.dumps(gathered))


if __name__ == "__main__":
    main(*sys.argv[1:3])
