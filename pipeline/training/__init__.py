"""What the HF Trainer needs beyond itself: the dataset transform, the collator and the Trainer subclass."""
