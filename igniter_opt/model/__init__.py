"""The iGniter performance model: coefficients, prediction, and (igniter_opt.model.fit) fitting.

`fit` is not imported here: it needs scipy, which the CLI loads only when fitting.
"""

from igniter_opt.model.coefficients import Hardware, ModelCoefficients, Profile, load_profile
from igniter_opt.model.instances import check_models, load_checked_instance
from igniter_opt.model.predict import (
    ModelArrays,
    Prediction,
    SoloTerms,
    check_colocation,
    frequency_under_cap,
    predict,
    predict_arrays,
    predict_checked,
    scheduling_increase,
    solo_active_time,
    solo_terms,
)

__all__ = [
    "Hardware", "ModelCoefficients", "Profile", "load_profile", "check_models", "load_checked_instance",
    "ModelArrays", "Prediction", "SoloTerms", "check_colocation", "frequency_under_cap", "predict",
    "predict_arrays", "predict_checked", "scheduling_increase", "solo_active_time", "solo_terms",
]
