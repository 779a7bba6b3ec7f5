"""One HiGHS model for the master: a silent instance, and the model as arrays (a pickled master)."""

from __future__ import annotations

import os
import sys

import highspy
import numpy as np

from igniter_opt.model.predict import Array

_LP_VECTORS = ("col_cost_", "col_lower_", "col_upper_", "row_lower_", "row_upper_")
_LP_MATRIX = ("start_", "index_", "value_")  # column-wise, as the master builds it


def new_highs(threads: int) -> highspy.Highs:
    """A silent HiGHS instance (highspy prints its banner from C++ on construction: fd 1 is muted)."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()  # type: ignore[no-untyped-call]
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", threads)
    return h


def model_arrays(h: highspy.Highs) -> dict[str, Array]:
    """The model's costs, bounds and column-wise matrix as arrays (the basis is not kept)."""
    lp = h.getLp()
    return {name: np.array(getattr(lp, name)) for name in _LP_VECTORS} | \
        {name: np.array(getattr(lp.a_matrix_, name)) for name in _LP_MATRIX}


def from_arrays(arrays: dict[str, Array], threads: int) -> highspy.Highs:
    """A new silent instance holding the model `model_arrays` gave (its next solve is cold)."""
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(arrays["col_cost_"]), len(arrays["row_lower_"])
    for name in _LP_VECTORS:
        setattr(lp, name, arrays[name])
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = lp.num_col_, lp.num_row_
    for name in _LP_MATRIX:
        setattr(lp.a_matrix_, name, arrays[name])
    h = new_highs(threads)
    h.passModel(lp)
    return h
