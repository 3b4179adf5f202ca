"""The model registry imports a kind's library only when that kind is used: loading the scikit-learn
model never loads torch, Lightning or stable-baselines3; each kind declares the libraries its module
imports; a kind whose library is missing is refused with a one-line error; the skops file of the
boosted trees loads only the types it is known to need."""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from xray_core.errors import DataError
from xray_core.learning.dataset import FEATURES
from xray_core.learning.models import base, registry
from xray_core.learning.models.registry import CLASSES, DEMO_PARAMS, MODEL_KINDS, build_model, load_model

HEAVY = ("torch", "pytorch_lightning", "lightning", "stable_baselines3")


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _run(script: str, *args: str) -> str:
    """stdout of `script` in a fresh interpreter (the test process has imported everything already)."""
    command = [sys.executable, "-c", script, *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip()


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    """A learnable frame: the label follows the first feature."""
    rng = np.random.default_rng(11)
    n = 400
    stamps = pl.datetime_range(
        pl.datetime(2026, 1, 1),
        pl.datetime(2026, 1, 1) + pl.duration(hours=n - 1),
        "1h",
        eager=True,
        time_zone="UTC",
    ).cast(pl.Datetime("ms", "UTC"))
    values = rng.normal(size=(n, len(FEATURES)))
    label = (values[:, 0] > 0).astype(np.int64)
    frame = pl.DataFrame({"timestamp": stamps, "symbol": ["AAA/USDT"] * n})
    frame = frame.with_columns(pl.Series(name, values[:, k]) for k, name in enumerate(FEATURES))
    return frame.with_columns(pl.Series("label", label), pl.lit(1.0).alias("weight"))


@pytest.fixture(scope="module")
def saved_gbm(frame, tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("gbm") / "model"
    build_model("gbm").fit(frame).save(directory)
    frame.write_parquet(directory.parent / "frame.parquet")
    return directory


def test_listing_the_kinds_imports_no_model_library():
    probe = (
        "import sys\n"
        "from xray_core.learning.models.registry import MODEL_KINDS, DEMO_PARAMS\n"
        "assert sorted(MODEL_KINDS) == ['gbm', 'lstm', 'rl'] and len(DEMO_PARAMS) == 3\n"
        "print(','.join(m for m in ('sklearn', 'skops', *sys.argv[1:]) if m in sys.modules))\n"
    )
    assert _run(probe, *HEAVY) == ""


def test_loading_the_scikit_learn_model_imports_no_torch_lightning_or_sb3(saved_gbm, frame):
    """The runtime trading a gbm champion loads this path; torch alone is hundreds of MB and seconds."""
    probe = (
        "import sys, polars as pl\n"
        "from xray_core.learning.models.registry import load_model\n"
        "model = load_model(sys.argv[1])\n"
        "p = model.predict_proba(pl.read_parquet(sys.argv[2]))\n"
        "assert type(model).__name__ == 'GbmModel' and ((p >= 0) & (p <= 1)).all()\n"
        "print(','.join(m for m in sys.argv[3:] if m in sys.modules))\n"
    )
    assert _run(probe, str(saved_gbm), str(saved_gbm.parent / "frame.parquet"), *HEAVY) == ""
    # and the same model in this process, where everything is loaded, predicts the same
    expected = build_model("gbm").fit(frame).predict_proba(frame)
    np.testing.assert_array_equal(load_model(saved_gbm).predict_proba(frame), expected)


def test_hiding_the_torch_shim_leaves_skops_trust_list_unchanged():
    """gbm.py hides scikit-learn's torch array-API shim while skops.io loads; skops's default trust
    list (every scikit-learn estimator) must come out the same as with the shim importable."""
    probe = (
        "import sys\n"
        "if sys.argv[1] == 'hidden':\n"
        "    import xray_core.learning.models.gbm\n"
        "from skops.io import _trusted_types as t\n"
        "print('torch' in sys.modules, *sorted(t.SKLEARN_ESTIMATOR_TYPE_NAMES))\n"
    )
    hidden = _run(probe, "hidden").split()
    plain = _run(probe, "plain").split()
    assert hidden[0] == "False"
    assert len(hidden) > 100 and hidden[1:] == plain[1:]
    # the shim is importable again afterwards (scikit-learn's array-API support with torch tensors)
    import sklearn.externals.array_api_compat.torch as shim

    assert shim.__name__.endswith(".torch")


def test_a_kind_whose_library_is_missing_is_refused_with_one_line():
    probe = (
        "import sys\n"
        "class NoTorch:  # as if torch were not installed\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from xray_core.errors import ConfigError\n"
        "from xray_core.learning.models.registry import build_model\n"
        "build_model('gbm')\n"
        "try:\n"
        "    build_model('lstm')\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    message = _run(probe)
    assert "lstm" in message and "'torch'" in message and "pip install" in message
    assert "\n" not in message


def test_lookups_import_on_demand_and_refuse_unknown_kinds():
    assert set(MODEL_KINDS) == set(DEMO_PARAMS) == set(CLASSES)
    for kind, cls in MODEL_KINDS.items():
        assert cls.kind == kind and f"{cls.__module__}:{cls.__name__}" == CLASSES[kind]
        assert DEMO_PARAMS[kind] is sys.modules[cls.__module__].DEMO
    with pytest.raises(KeyError):
        MODEL_KINDS["svm"]
    with pytest.raises(Exception, match="use one of gbm, lstm, rl"):
        registry.model_class("svm")


def _imports(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def _third_party(names: set[str]) -> set[str]:
    """The distributions behind the non-stdlib, non-X-Ray modules in `names`."""
    distributions = packages_distributions()
    tops = {name.split(".")[0] for name in names} - set(sys.stdlib_module_names) - {"xray_core"}
    return {_canonical(distributions[top][0]) for top in tops}


@pytest.mark.parametrize("kind", sorted(CLASSES))
def test_each_kind_declares_the_libraries_its_module_imports(kind):
    """`library` is what the logged MLflow model requires: it must cover every third-party import of
    the kind's module (and of the model modules it builds on), no more, or a serving environment
    built from the requirements would lack one or carry another kind's."""
    cls = MODEL_KINDS[kind]
    names = _imports(Path(sys.modules[cls.__module__].__file__))
    siblings = {n for n in names if n.startswith("xray_core.learning.models.")} - {base.__name__}
    for sibling in siblings:  # e.g. the agent's environment
        names |= _imports(Path(sys.modules[sibling].__file__))
    shared = {_canonical(name) for name in base.BASE_LIBRARY}
    # base itself imports BASE_LIBRARY, and torch only inside the helpers the torch kinds call
    assert _third_party(_imports(Path(base.__file__))) - {"torch"} == shared
    assert _third_party(names) - shared == {_canonical(name) for name in cls.library}


def test_a_skops_file_with_an_unexpected_type_is_refused(saved_gbm, tmp_path):
    """The trust list is ours (gbm.TRUSTED_TYPES), not read from the artefact: a weights file asking
    for any other type is refused before anything is loaded."""
    import shutil
    from fractions import Fraction

    import skops.io as sio

    copy = tmp_path / "model"
    shutil.copytree(saved_gbm, copy)
    sio.dump({"estimator": Fraction(1, 3)}, copy / "gbm.skops")
    assert "fractions.Fraction" in sio.get_untrusted_types(file=copy / "gbm.skops")
    with pytest.raises(DataError, match=r"unexpected types fractions\.Fraction"):
        load_model(copy)
