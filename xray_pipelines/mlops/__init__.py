"""MLflow: tracking, the model registry with champion/challenger aliases, and the promotion gate.

Every trained model is logged as an MLflow pyfunc built from code (`pyfunc_model.py`): the model
files are artefacts and the loader only needs `xray_core`, so the trading runtime can load
`models:/NAME@champion` without importing the pipelines."""
