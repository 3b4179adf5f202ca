"""MLflow "model from code": the pyfunc wrapper every X-Ray signal model is served through.

MLflow logs this file as an artefact and runs it when the model is loaded, so loading needs
`xray_core` (the model classes) and nothing from the pipelines. Input: a frame with `timestamp`,
`symbol` and the model's feature columns, rows in time order per symbol (sequence models read the
rows before each one). Output: P(next move up) per row.
"""

import mlflow
import numpy as np
import pandas as pd
import polars as pl

# The defining module: mlflow.pyfunc re-exports these only implicitly, which a type checker does not see.
from mlflow.pyfunc.model import PythonModel, PythonModelContext


class XraySignalModel(PythonModel):
    def load_context(self, context: PythonModelContext) -> None:
        from xray_core.learning.models.registry import load_model

        self.model = load_model(context.artifacts["model_dir"])

    def predict(
        self, context: PythonModelContext, model_input: pd.DataFrame, params: dict | None = None
    ) -> np.ndarray:
        frame = pl.from_pandas(model_input)
        if "timestamp" in frame.columns:  # the models expect Datetime[ms, UTC]
            stamp = pl.col("timestamp").dt.cast_time_unit("ms")
            dtype = frame.schema["timestamp"]
            naive = isinstance(dtype, pl.Datetime) and dtype.time_zone is None
            frame = frame.with_columns(
                stamp.dt.replace_time_zone("UTC") if naive else stamp.dt.convert_time_zone("UTC")
            )
        return np.asarray(self.model.predict_proba(frame), dtype=np.float64)


mlflow.models.set_model(XraySignalModel())
