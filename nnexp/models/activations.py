"""Activation names, scikit-learn's and more, and the torch layer class each stands for.

Kept free of torch so that config checks can name the allowed values before torch is imported.
"""

ACTIVATIONS = {
    "relu": "ReLU",
    "tanh": "Tanh",
    "logistic": "Sigmoid",
    "identity": "Identity",
    "gelu": "GELU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "silu": "SiLU",
}  # name -> torch.nn class name
