"""Settings: defaults, environment, TOML file and their precedence."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.batcher import QueueSpec
from service.environment import usable_cores
from service.models import (
    PIXELIZED_DEFAULT_BUCKETS,
    default_specs,
    load_models,
    model_buckets,
    service_execution,
)
from service.settings import ModelSpec, ServiceSettings, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    import os

    for key in list(os.environ):
        if key.startswith("LENSSERVE_"):
            monkeypatch.delenv(key)


def test_defaults_bind_loopback_and_batch_to_the_largest_bucket():
    settings = ServiceSettings()
    assert settings.host == "127.0.0.1"
    assert settings.buckets == (1, 2, 4, 8, 16, 32, 64)
    assert settings.max_batch_size == 64
    assert settings.token is None and settings.models is None


def test_environment_then_file_then_defaults(tmp_path, monkeypatch):
    config = tmp_path / "lensserve.toml"
    config.write_text(
        'port = 9000\nmax_wait_ms = 7.5\nbuckets = [8, 1, 4]\n'
        '[[models]]\nname = "small"\nkind = "mge"\nmask_radius = 1.5\n'
        'settings = { lens_gaussians = 4 }\n'
    )
    monkeypatch.setenv("LENSSERVE_PORT", "9100")
    monkeypatch.setenv("LENSSERVE_TOKEN", "s3cret")
    settings = load_settings(config, host="0.0.0.0")
    assert settings.host == "0.0.0.0"  # explicit override wins
    assert settings.port == 9100  # environment beats the file
    assert settings.max_wait_ms == 7.5  # file beats the default
    assert settings.buckets == (1, 4, 8) and settings.max_batch_size == 8
    assert settings.models[0].settings == {"lens_gaussians": 4}
    assert settings.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(settings)


def test_models_from_json_environment(monkeypatch):
    monkeypatch.setenv("LENSSERVE_MODELS", '[{"name": "a", "kind": "mge"}]')
    assert ServiceSettings().models[0].name == "a"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"buckets": ()}, "non-empty"),
        ({"buckets": (1, 2), "max_batch_size": 4}, "exceeds the largest bucket"),
        ({"max_queue_points": 10, "max_request_points": 20}, "max_request_points"),
        ({"models": [{"name": "a", "kind": "mge"}, {"name": "a", "kind": "mge"}]}, "unique"),
        ({"models": [{"name": "a/b", "kind": "mge"}]}, "pattern"),
        ({"typo_field": 1}, "Extra inputs"),
    ],
)
def test_invalid_settings_are_refused(values, message):
    with pytest.raises(ValidationError, match=message):
        ServiceSettings(**values)


def test_config_file_must_be_toml(tmp_path):
    with pytest.raises(ValueError, match="TOML"):
        load_settings(tmp_path / "x.yaml")
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "missing.toml")


def test_a_model_may_have_its_own_buckets():
    spec = ModelSpec(name="pix", kind="rectangular", buckets=[4, 1, 2, 2])
    assert spec.buckets == (1, 2, 4)
    ladder = ServiceSettings().buckets
    assert model_buckets(["pix", "mge"], [spec], ladder) == {"pix": (1, 2, 4), "mge": ladder}
    with pytest.raises(ValidationError, match="positive"):
        ModelSpec(name="pix", kind="rectangular", buckets=[0, 2])


def test_default_models_are_every_kind_with_small_pixelized_buckets():
    specs = {spec.kind: spec for spec in default_specs()}
    assert set(specs) == {"mge", "rectangular", "delaunay"}
    assert specs["mge"].buckets is None
    assert specs["delaunay"].buckets == specs["rectangular"].buckets == PIXELIZED_DEFAULT_BUCKETS


def test_a_batch_never_exceeds_a_models_largest_bucket():
    assert QueueSpec((1, 2, 4), padding=None).max_batch_size == 4
    with pytest.raises(ValueError, match="exceeds the largest bucket 4"):
        QueueSpec((1, 2, 4), padding=None, max_batch_size=8)


def test_kernel_threads_default_to_the_usable_cores_and_come_from_the_environment(monkeypatch):
    assert ServiceSettings().kernel_threads == usable_cores()
    monkeypatch.setenv("LENSSERVE_KERNEL_THREADS", "3")
    assert ServiceSettings().kernel_threads == 3


@pytest.mark.parametrize("value", ["two", "0", "-1", "1.5"])
def test_a_bad_kernel_thread_count_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv("LENSSERVE_KERNEL_THREADS", value)
    with pytest.raises(ValidationError, match="kernel_threads"):
        ServiceSettings()


def test_the_served_models_run_the_backends_formulation_with_the_kernel_threads():
    from likelihood.execution import Execution

    # The tests run on a CPU: the sparse host kernel.
    assert service_execution(3) == Execution("sparse", 3)
    assert service_execution() == Execution("sparse", usable_cores())


def test_the_lanes_and_formulation_come_from_the_device_unless_set():
    from likelihood.execution import Execution

    assert service_execution(2, lanes="vectorized") == Execution("sparse", 2, "vectorized")
    assert service_execution(2, formulation="dense") == Execution("dense", 2, "sequential")


def test_lanes_and_formulation_are_settings_refused_by_name_when_unknown(monkeypatch):
    assert ServiceSettings().lanes is None and ServiceSettings().formulation is None
    monkeypatch.setenv("LENSSERVE_LANES", "vectorized")
    monkeypatch.setenv("LENSSERVE_FORMULATION", "dense")
    settings = ServiceSettings()
    assert (settings.lanes, settings.formulation) == ("vectorized", "dense")
    monkeypatch.setenv("LENSSERVE_LANES", "parallel")
    with pytest.raises(ValidationError, match="lanes"):
        ServiceSettings()
    with pytest.raises(ValidationError, match="formulation"):
        ModelSpec(name="a", kind="mge", formulation="gpu")


def test_a_model_may_override_the_services_lanes_and_formulation():
    small = {"lens_gaussians": 2, "source_gaussians": 2, "mesh_shape": [6, 6]}
    models = load_models([
        ModelSpec(name="own", kind="mge", mask_radius=0.8, settings=small, lanes="vectorized"),
        ModelSpec(name="service", kind="rectangular", mask_radius=0.8, settings=small),
    ], 2, lanes="sequential", formulation="dense")
    assert models["own"].describe()["execution"] == {
        "lanes": "vectorized", "formulation": "dense", "kernel_threads": 2}
    assert models["service"].core.lanes == "sequential"
    assert models["service"].core.source.operator.formulation == "dense"
