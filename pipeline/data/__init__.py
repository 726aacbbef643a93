"""Data: datasets, decoding, frame sampling and transforms for video classification."""
