"""igniter-opt: interference-aware GPU provisioning for DNN inference (after iGniter, TPDS 2023)."""

__version__ = "0.1.0"
