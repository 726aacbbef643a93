"""Checkpoint reloads keep every weight (VideoMAE's q/v biases are renamed on save; DESIGN fact 9)."""

import torch
from torch.utils.data import Dataset
from transformers import TrainingArguments, VideoMAEConfig, VideoMAEForVideoClassification

from pipeline.training.trainer import VideoTrainer

CONFIG = dict(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32, num_hidden_layers=1,
              num_attention_heads=2, intermediate_size=37, num_labels=3)


class RandomClips(Dataset):
    def __len__(self):
        return 16

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        return {"pixel_values": torch.randn(4, 3, 32, 32, generator=g), "labels": i % 3}


def make(trainer_class, out, **kwargs):
    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(**CONFIG))
    args = TrainingArguments(out, per_device_train_batch_size=4, learning_rate=0.05, report_to="none",
                             use_cpu=True, save_strategy="steps", save_steps=2, disable_tqdm=True, **kwargs)
    return trainer_class(model=model, args=args, train_dataset=RandomClips(), eval_dataset=RandomClips())


def q_bias(model):
    return model.videomae.encoder.layer[0].attention.attention.query.bias.detach().clone()


def test_resume_restores_the_renamed_biases(tmp_path):
    trained = make(VideoTrainer, tmp_path, max_steps=2)
    trained.train()
    saved = q_bias(trained.model)
    assert saved.abs().sum() > 0  # trained away from the zero init
    # (the plain transformers 5.23 Trainer fails this: its reload leaves the biases at their init)
    resumed = make(VideoTrainer, tmp_path, max_steps=2)  # nothing left to train: the weights are the checkpoint's
    resumed.train(resume_from_checkpoint=str(tmp_path / "checkpoint-2"))
    assert torch.equal(q_bias(resumed.model), saved)


def test_best_model_at_end_restores_every_weight(tmp_path):
    trainer = make(VideoTrainer, tmp_path, max_steps=4, eval_strategy="steps", eval_steps=2,
                   load_best_model_at_end=True, metric_for_best_model="loss", greater_is_better=False)
    trainer.train()
    best = trainer.state.best_model_checkpoint
    reference = VideoMAEForVideoClassification.from_pretrained(best).state_dict()
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, reference[key]), key


class RandomClipStream(torch.utils.data.IterableDataset):
    """Eight clips a pass and no length: a stream, as the Trainer sees a streamed train split."""

    def __iter__(self):
        return (RandomClips()[i] for i in range(8))


def test_a_stream_gives_its_clip_randomness_the_run_seed_and_the_stream_epoch(tmp_path):
    from transformers import TrainerCallback

    from pipeline.training.clip_randomness import ClipRandomness

    randomness = ClipRandomness()
    seen = []

    class Record(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            seen.append((randomness.seed, randomness.epoch))

    torch.manual_seed(0)
    model = VideoMAEForVideoClassification(VideoMAEConfig(**CONFIG))
    args = TrainingArguments(tmp_path, per_device_train_batch_size=4, max_steps=6, report_to="none", use_cpu=True,
                             save_strategy="no", disable_tqdm=True, seed=7, data_seed=11)
    VideoTrainer(model=model, args=args, train_dataset=RandomClipStream(), clip_randomness=randomness,
                 callbacks=[Record()]).train()
    # two batches a pass: the draws take data_seed and the stream's epoch 0, 1, 2 (the Trainer's own epoch stays 0)
    assert seen == [(11, 0), (11, 0), (11, 1), (11, 1), (11, 2), (11, 2)]
