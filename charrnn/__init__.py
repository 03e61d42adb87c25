"""charrnn: character-level RNN, LSTM and GRU language models on a fast NumPy core.

    >>> import charrnn
    >>> run = charrnn.train("data/pond.txt", max_steps=200)
    >>> model = charrnn.load(run.run_dir)
    >>> print(model.sample(200, prime="MILLER:", temperature=0.8, seed=1))

Everything public is listed in `__all__`; the modules behind it may change.
"""

__version__ = "0.1.0"

from charrnn.api import Model, Run, load, train
from charrnn.errors import CharRNNError
from charrnn.tasks.scoring import Score
from charrnn.training.config import Config
from charrnn.training.trainer import TrainEvent

__all__ = ["CharRNNError", "Config", "Model", "Run", "Score", "TrainEvent", "__version__", "load", "train"]
