"""Training: gradient descent (trainer), and later evolved weights and weight inheritance."""
from .trainer import TrainResult, TrainSettings, predict_logits, train

__all__ = ["TrainSettings", "TrainResult", "train", "predict_logits"]
