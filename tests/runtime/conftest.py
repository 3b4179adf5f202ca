"""Fixtures the runtime's end-to-end service tests share (helpers: service_support.py)."""

import pytest
from cryptography.fernet import Fernet
from service_support import fast_bundle

from xray_core.bundle import publish
from xray_runtime.settings import RuntimeSettings


@pytest.fixture
def runtime_env(tmp_path, fixed_emulator, fixed_admin):
    emulator, admin = fixed_emulator, fixed_admin
    fernet = Fernet.generate_key().decode()
    settings = RuntimeSettings(
        database_url=f"sqlite:///{tmp_path / 'runtime.db'}", bundle_dir=tmp_path / "bundles",
        fernet_key=fernet, paper_url=emulator.base_url, http_port=0, reconcile_every_s=3600,
    )
    publish(fast_bundle(), settings.bundle_dir)
    return settings, emulator, admin
