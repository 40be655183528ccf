"""lmr-trainer: fine-tune, evaluate and publish GLiNER location-mention models."""
