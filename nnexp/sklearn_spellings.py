"""scikit-learn's tuple spelling of layer sizes on nnexp's command line.

The lecture writes ``hidden_layer_sizes=(10,10,10)`` and ``(5,)``; Hydra's override grammar has
lists only (``[10,10,10]``), and answers a tuple with a grammar error. A tuple of whole numbers for
a layer-sizes key is rewritten to the list form before Hydra sees it; sweeps of tuples too
(``(10,),(50,)`` -> ``[10],[50]``). Anything else in parentheses is left to Hydra's grammar.
scikit-learn also takes a whole number for one hidden layer (``hidden_layer_sizes=100``): under
its own name it becomes ``[100]`` (a sweep ``10,50`` becomes ``[10],[50]``).
"""

from __future__ import annotations

import re

LAYER_KEYS = ("hidden_layer_sizes", "model.hidden_sizes")
TUPLE = re.compile(r"\(\s*(\d+(?:\s*,\s*\d+)*)?\s*,?\s*\)")
WHOLE_NUMBERS = re.compile(r"^\d+(?:\s*,\s*\d+)*$")
WHOLE_VALUE = re.compile(r"^\(\s*(?:\d+\s*(?:,\s*\d+\s*)*,?\s*)?\)(?:\s*,\s*\(\s*(?:\d+\s*(?:,\s*\d+\s*)*,?\s*)?\))*$")


def list_form(value: str) -> str:
    """``(10,10,10)`` -> ``[10,10,10]``, ``(5,)`` -> ``[5]``, ``()`` -> ``[]``; sweeps element by element."""
    return TUPLE.sub(lambda match: "[" + ",".join(re.findall(r"\d+", match.group(0))) + "]", value)


def tuples_as_lists(argv: list[str]) -> tuple[list[str], list[str]]:
    """(the command line with layer-size tuples in list form, the rewrites made)."""
    result, notes = [], []
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and key.lstrip("+~") in LAYER_KEYS and WHOLE_VALUE.match(value.strip()):
            new = f"{key}={list_form(value.strip())}"
            notes.append(f"{arg} -> {new}")
            arg = new
        elif sep and key.lstrip("+~") == "hidden_layer_sizes" and WHOLE_NUMBERS.match(value.strip()):
            new = f"{key}=" + ",".join(f"[{number.strip()}]" for number in value.split(","))
            notes.append(f"{arg} -> {new}")
            arg = new
        result.append(arg)
    return result, notes
