"""charrnn: character-level RNN, LSTM and GRU networks on NumPy: language models that write more of a text,
classifiers, per-character taggers and encoder-decoders with attention.

    >>> import charrnn
    >>> run = charrnn.train("data/pond.txt", max_steps=200)
    >>> model = charrnn.load(run.run_dir)
    >>> print(model.sample(200, prime="MILLER:", temperature=0.8, seed=1))

Everything public is listed in `__all__`; the modules behind it may change.
"""

from charrnn.errors import CharRNNError
from charrnn.interfaces.api import Run, check_export, export, load, runs, train
from charrnn.tasks.classify import Classifier
from charrnn.tasks.language_model import LanguageModel
from charrnn.tasks.model import Model
from charrnn.tasks.scoring import Score
from charrnn.tasks.seq2seq import Translator
from charrnn.tasks.tag import Tagger
from charrnn.training.config import Config
from charrnn.training.trainer import TrainEvent
from charrnn.version import __version__

__all__ = [
    "CharRNNError",
    "Classifier",
    "Config",
    "LanguageModel",
    "Model",
    "Run",
    "Score",
    "Tagger",
    "TrainEvent",
    "Translator",
    "__version__",
    "check_export",
    "export",
    "load",
    "runs",
    "train",
]
