"""charrnn: character-level RNN, LSTM and GRU language models on a fast NumPy core."""

__version__ = "0.1.0"

from charrnn.errors import CharRNNError

__all__ = ["CharRNNError", "__version__"]
