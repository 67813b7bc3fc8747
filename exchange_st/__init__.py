"""exchange_st: arbitrary style transfer with pair-wise exchangeable features."""

__version__ = "0.1.0"
