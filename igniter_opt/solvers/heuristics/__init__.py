"""Heuristics: the reference iGniter greedy, first-fit decreasing, and the fixed-point first fit."""

from igniter_opt.solvers.heuristics import ffd, greedy
from igniter_opt.solvers.heuristics.firstfit import first_fit
from igniter_opt.solvers.heuristics.greedy import place_greedy

__all__ = ["ffd", "first_fit", "greedy", "place_greedy"]
