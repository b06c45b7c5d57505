"""SNN perception: task and labels, dataset generation, the LIF convolutional SNN with a
stepping API, dynamic-confidence early exit, training, evaluation and model files."""
