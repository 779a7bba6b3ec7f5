"""The iGniter performance model: coefficients, fitting from a raw profile, prediction."""

from igniter_opt.model.coefficients import (
    Hardware,
    ModelCoefficients,
    Profile,
    bundled_profiles,
    load_profile,
)
from igniter_opt.model.predict import (
    ModelArrays,
    Prediction,
    predict,
    predict_arrays,
    solo_active_time,
    solo_terms,
)

__all__ = [
    "Hardware", "ModelCoefficients", "Profile", "bundled_profiles", "load_profile",
    "ModelArrays", "Prediction", "predict", "predict_arrays", "solo_active_time", "solo_terms",
]
