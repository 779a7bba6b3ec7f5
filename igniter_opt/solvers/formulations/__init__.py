"""Exact formulations on HiGHS through Pyomo: the compact MILP (`milp`) and set partitioning over
fitting subsets (`patterns`), their shared configurations (common), the batches a demand may use
(batches, also used by the exact solver), bounds and HiGHS runner."""

from igniter_opt.solvers.formulations import compact, patterns
from igniter_opt.solvers.formulations.common import Configs, shareable_configs
from igniter_opt.solvers.formulations.compact import CompactOptions
from igniter_opt.solvers.formulations.compactdata import CompactFeatures
from igniter_opt.solvers.formulations.highs import run_highs
from igniter_opt.solvers.formulations.patterns import PatternsOptions

__all__ = ["CompactFeatures", "CompactOptions", "Configs", "PatternsOptions", "compact", "patterns", "run_highs",
           "shareable_configs"]
