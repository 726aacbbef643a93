"""Publishing: the model card and the Hub push (``python -m pipeline.publish push ...``)."""
