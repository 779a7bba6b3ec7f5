"""Solver `exact`: branch-and-price over single-GPU configurations (see docs/exact.md).

oracle   least shares of many candidate GPUs at once (the model inverted per member)
master   the covering master LP / integer program over generated columns (highspy)
pricing  the Pricer: pair-share table, memo, heuristic and exhaustive pricing calls
levels   the level-wise vectorised search both pricing modes run
bnp      column generation, the bound argument, Ryan-Foster branching
splits   rate levels of workloads above one GPU (the split is exact's decision)
solver   types and options from demands, seeds, plan assembly; the registered SOLVER
"""

from igniter_opt.solvers.exact.solver import SOLVER, ExactOptions

__all__ = ["SOLVER", "ExactOptions"]
