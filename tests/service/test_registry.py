"""Lenses registered at runtime, over HTTP against a real uvicorn server and a real database.

The configured model is the suite's small `mge` (the embedded dataset on a 1" mask): a lens of the
same cutout, pixel scale, mask and settings falls in its warm shape class (201, nothing
compiled); a smaller cutout is a new class (202, compiled in the background). Answers are
compared with the same dataset loaded in-process (`load_imaging`) to 1e-12.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jax
import msgpack
import numpy as np
import pytest
from astropy.io import fits

from client import AsyncClient, Client, ServiceError
from likelihood import default_dataset, load_imaging
from likelihood.dataset import save_imaging
from service.app import create_app
from service.models import build_served_model
from service.registry import RegistryStore
from service.registry.lenses import encode_arrays
from service.settings import ModelSpec
from service.wire import pack_array
from tests import postgresql, servers
from tests.service.conftest import AUTH, SMALL_MODEL, TOKEN, random_points, small_settings

REPOSITORY = Path(__file__).resolve().parents[2]
SETTINGS = {"lens_gaussians": 2, "source_gaussians": 2}
MSGPACK = {"Content-Type": "application/msgpack"}


def lens(scale: float, seed: int, crop: int = 0):
    """The embedded dataset with its data scaled and its noise changed (other values, same
    shapes), `crop` pixels cut from every side (other shapes)."""
    dataset = default_dataset()
    rng = np.random.default_rng(seed)
    noise = dataset.noise_map * rng.uniform(1.0, 1.5, dataset.shape)
    window = slice(crop, dataset.shape[0] - crop)
    return dataclasses.replace(dataset, data=scale * dataset.data[window, window],
                               noise_map=noise[window, window])


def packed_body(imaging, **fields) -> bytes:
    return msgpack.packb({
        "kind": "mge", "pixel_scale": imaging.pixel_scale, "mask_radius": 1.0,
        "settings": SETTINGS, "data": pack_array(imaging.data),
        "noise_map": pack_array(imaging.noise_map), "psf": pack_array(imaging.psf), **fields,
    }, use_bin_type=True)


def write_fits(dataset, directory: Path) -> Path:
    directory.mkdir()
    for what in ("data", "noise_map", "psf"):
        fits.PrimaryHDU(getattr(dataset, what)).writeto(directory / f"{what}.fits")
    return directory


def fits_upload(directory: Path, **fields):
    files = {what: (f"{what}.fits", (directory / f"{what}.fits").read_bytes(),
                    "application/fits") for what in ("data", "noise_map", "psf")}
    form = {"kind": "mge", "mask_radius": "1.0", "settings": json.dumps(SETTINGS), **fields}
    return {"files": files, "data": form}


def in_process(path: Path, pixel_scale: float | None = None, **spec):
    """The model of the dataset at `path` loaded as the service's configuration would be."""
    model_spec = ModelSpec(name="reference", kind="mge", mask_radius=1.0, settings=SETTINGS,
                           **spec)
    return build_served_model(model_spec, load_imaging(path, pixel_scale=pixel_scale))


def evaluate(client: httpx.Client, name: str, points: np.ndarray) -> np.ndarray:
    response = client.post(f"/v1/models/{name}/log-evidence",
                           json={"parameters": points.tolist()})
    assert response.status_code == 200, response.text
    return np.array(response.json()["log_evidence"], dtype=float)


def expected(model, points: np.ndarray) -> np.ndarray:
    return np.asarray(jax.jit(jax.vmap(model.log_evidence))(points))


def compilations(client: httpx.Client) -> float:
    text = client.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("lensserve_compilations_total"))


def wait_ready(client: httpx.Client, name: str, timeout: float = 300) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/v1/models/{name}").json()
        if status["state"] == "ready" or status["state"].startswith("failed"):
            return status
        assert time.monotonic() < deadline, f"{name} not ready: {status['state']}"
        time.sleep(0.2)


def registry_settings(data_dir: Path, **overrides):
    return small_settings(models=[SMALL_MODEL], data_dir=data_dir, **overrides)


def serve(settings):
    return servers.running_server(create_app(settings), token=TOKEN, ready_timeout=600.0)


@pytest.fixture
def client_of() -> Iterator:
    clients = []

    def make(url: str) -> httpx.Client:
        clients.append(httpx.Client(base_url=url, headers=AUTH, timeout=120))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


@pytest.mark.timeout(900)
def test_register_evaluate_restart_and_delete(tmp_path, client_of):
    settings = registry_settings(tmp_path / "state")
    warm = lens(1.3, 1)
    save_imaging(warm, tmp_path / "warm.npz")
    fits_lens = write_fits(lens(0.8, 2), tmp_path / "fits-lens")
    cold = lens(1.1, 3, crop=10)
    save_imaging(cold, tmp_path / "cold.npz")
    models = {"warm": in_process(tmp_path / "warm.npz"),
              "fits": in_process(fits_lens, pixel_scale=warm.pixel_scale),
              "cold": in_process(tmp_path / "cold.npz", buckets=(1, 2))}
    points = random_points(models["warm"], 2, seed=7)
    with serve(settings) as url:
        client = client_of(url)
        before = compilations(client)
        started = time.perf_counter()
        response = client.post("/v1/models", content=packed_body(warm, name="warm"),
                               headers=MSGPACK)
        warm_seconds = time.perf_counter() - started
        assert response.status_code == 201, response.text
        assert response.json()["state"] == "ready"
        assert response.headers["location"].endswith("/v1/models/warm")
        assert compilations(client) == before  # a warm shape class: nothing compiled
        print(f"a second lens in a warm shape class (mge) answered 201 in {warm_seconds:.2f} s")

        response = client.post("/v1/models", **fits_upload(
            fits_lens, name="fits", pixel_scale=str(warm.pixel_scale)))
        assert response.status_code == 201, response.text
        response = client.post("/v1/models", content=packed_body(cold, name="cold",
                                                                 buckets=[1, 2]),
                               headers=MSGPACK)
        assert response.status_code == 202, response.text
        assert response.json()["state"] in ("compiling", "serving")
        assert wait_ready(client, "cold")["state"] == "ready"
        assert compilations(client) > before

        answers = {name: evaluate(client, name, points) for name in models}
        for name, model in models.items():
            np.testing.assert_allclose(answers[name], expected(model, points), rtol=1e-12, atol=0)
        assert np.all(np.abs(answers["warm"] - evaluate(client, "mge", points)) > 1.0)

        described = client.get("/v1/models/warm").json()
        assert described["registration"]["dataset_sha256"]
        assert described["dataset"]["shape"] == list(warm.shape)
        assert client.delete("/v1/models/fits").json() == {"name": "fits", "drained": True}
        assert client.get("/v1/models/fits").status_code == 404
        assert client.post("/v1/models/fits/log-evidence",
                           json={"parameters": points.tolist()}).status_code == 404
        assert client.delete("/v1/models/fits").status_code == 404
        assert client.delete("/v1/models/mge").status_code == 409  # from the configuration

    with serve(settings) as url:  # a restart on the same SQLite file
        client = client_of(url)
        served = [model["name"] for model in client.get("/v1/models").json()["models"]]
        assert served == ["mge", "warm", "cold"]
        for name in ("warm", "cold"):
            np.testing.assert_array_equal(evaluate(client, name, points), answers[name])
        assert client.get("/v1/models/fits").status_code == 404


def bad_registrations(good):
    """(what, request keyword arguments, expected status, words of the message)."""
    nan_noise = good.noise_map.copy()
    nan_noise[good.shape[0] // 2, good.shape[1] // 2] = np.nan
    huge = {"shape": [100_000, 100_000], "dtype": "<f8", "data": b"\0" * 8}
    return [
        ("mismatched shapes", dict(content=packed_body(
            good, noise_map=pack_array(good.noise_map[1:])), headers=MSGPACK), 422,
         "does not match data shape"),
        ("NaN noise", dict(content=packed_body(good, noise_map=pack_array(nan_noise)),
                           headers=MSGPACK), 422, "noise map contains non-finite values"),
        ("even PSF", dict(content=packed_body(good, psf=pack_array(good.psf[1:, 1:])),
                          headers=MSGPACK), 422, "odd size"),
        ("huge declared array", dict(content=packed_body(good, data=huge), headers=MSGPACK), 413,
         "max_dataset_bytes"),
        ("body over the limit", dict(content=packed_body(
            good, data=pack_array(np.zeros((1000, 1000)))), headers=MSGPACK), 413,
         "max_dataset_bytes"),
        ("unknown kind", dict(content=packed_body(good, kind="nope"), headers=MSGPACK), 422,
         "unknown model kind 'nope'"),
        ("unknown setting", dict(content=packed_body(good, settings={"lens_gausians": 2}),
                                 headers=MSGPACK), 422, "lens_gausians"),
        ("duplicate name", dict(content=packed_body(good, name="good"), headers=MSGPACK), 409,
         "'good'"),
        ("a configured model's name", dict(content=packed_body(good, name="mge"),
                                           headers=MSGPACK), 409, "'mge'"),
        ("no pixel scale", dict(json={"kind": "mge", "data": good.data.tolist(),
                                      "noise_map": good.noise_map.tolist(),
                                      "psf": good.psf.tolist()}), 422, "pixel_scale"),
        ("strings for numbers", dict(json={"kind": "mge", "pixel_scale": 0.05,
                                           "data": [["1.0"]], "noise_map": [[1.0]],
                                           "psf": [[1.0]]}), 422, "data[0][0]"),
        ("an integer too large", dict(content=json.dumps(
            {"kind": "mge", "pixel_scale": 0.05, "data": [[10**400]], "noise_map": [[1.0]],
             "psf": [[1.0]]}), headers={"Content-Type": "application/json"}), 422,
         "too large for a float64"),
        ("a server path", dict(content=packed_body(good, dataset="/etc"), headers=MSGPACK), 422,
         "dataset"),
        ("not FITS", dict(files={what: (what, b"not fits", "application/fits")
                                 for what in ("data", "noise_map", "psf")},
                          data={"kind": "mge", "pixel_scale": "0.05"}), 422,
         "not a readable FITS file"),
        ("plain text", dict(content=b"hello", headers={"Content-Type": "text/plain"}), 415,
         "Content-Type"),
    ]


@pytest.mark.timeout(600)
def test_bad_registrations_get_4xx_and_change_nothing(tmp_path, client_of):
    settings = registry_settings(tmp_path / "state", max_dataset_bytes=2_000_000)
    good = lens(1.2, 4)
    with serve(settings) as url:
        client = client_of(url)
        assert client.post("/v1/models", content=packed_body(good, name="good"),
                           headers=MSGPACK).status_code == 201
        points = random_points(in_process_of(good), 2, seed=3)
        before = {name: evaluate(client, name, points) for name in ("mge", "good")}
        listed = client.get("/v1/models").json()["models"]
        for what, request, status, words in bad_registrations(good):
            response = client.post("/v1/models", **request)
            assert response.status_code == status, (what, response.text)
            assert words in response.json()["detail"], (what, response.text)
        assert client.get("/v1/models").json()["models"] == listed
        for name, values in before.items():
            np.testing.assert_array_equal(evaluate(client, name, points), values)
    store = RegistryStore(settings.registry_database)
    assert [record.name for record in store.all()] == ["good"]
    store.close()


def in_process_of(dataset):
    return build_served_model(ModelSpec(name="reference", kind="mge", mask_radius=1.0,
                                        settings=SETTINGS), dataset)


@pytest.mark.timeout(600)
def test_a_stored_model_whose_dataset_no_longer_validates_is_failed_not_fatal(tmp_path,
                                                                                client_of):
    settings = registry_settings(tmp_path / "state")
    store = RegistryStore(settings.registry_database)
    store.migrate()
    dataset = lens(1.0, 5)
    arrays = {"data": dataset.data, "noise_map": -dataset.noise_map, "psf": dataset.psf}
    blob = encode_arrays(arrays)
    spec = ModelSpec(name="broken", kind="mge", pixel_scale=dataset.pixel_scale, mask_radius=1.0,
                     settings=SETTINGS)
    store.add("broken", spec.model_dump(mode="json", exclude={"dataset"}),
              hashlib.sha256(blob).hexdigest(), blob)
    store.close()
    with serve(settings) as url:
        client = client_of(url)
        assert client.get("/readyz").status_code == 200
        status = client.get("/v1/models/broken").json()
        assert status["state"] == "failed: noise map must be positive inside the mask"
        assert not status["ready"]
        assert [model["name"] for model in client.get("/v1/models").json()["models"]] == ["mge"]
        assert client.post("/v1/models/broken/log-evidence",
                           json={"parameters": [[0.0] * 15]}).status_code == 404
        assert client.delete("/v1/models/broken").status_code == 200
        assert client.get("/v1/models/broken").status_code == 404


@pytest.mark.timeout(900)
@pytest.mark.skipif(postgresql.skip_reason() is not None, reason=str(postgresql.skip_reason()))
def test_a_postgresql_registry_restores_its_models(tmp_path, client_of):
    lens_dataset = lens(0.9, 6)
    save_imaging(lens_dataset, tmp_path / "lens.npz")
    model = in_process(tmp_path / "lens.npz")
    points = random_points(model, 3, seed=11)
    with postgresql.running_postgresql() as database:
        settings = registry_settings(tmp_path / "state", registry_url=database)
        with serve(settings) as url:
            client = client_of(url)
            response = client.post("/v1/models", content=packed_body(lens_dataset, name="pg"),
                                   headers=MSGPACK)
            assert response.status_code == 201, response.text
            answers = evaluate(client, "pg", points)
            np.testing.assert_allclose(answers, expected(model, points), rtol=1e-12, atol=0)
        assert not (tmp_path / "state" / "registry.sqlite").exists()
        with serve(settings) as url:
            client = client_of(url)
            np.testing.assert_array_equal(evaluate(client, "pg", points), answers)
            assert client.delete("/v1/models/pg").status_code == 200
        with serve(settings) as url:
            assert client_of(url).get("/v1/models/pg").status_code == 404


@pytest.mark.timeout(600)
def test_the_client_and_the_cli_register_lenses(tmp_path, client_of):
    npz_lens, fits_lens, object_lens = lens(1.2, 7), lens(0.7, 8), lens(1.5, 9)
    save_imaging(npz_lens, tmp_path / "lens.npz")
    fits_dir = write_fits(fits_lens, tmp_path / "fits-lens")
    spec = dict(kind="mge", mask_radius=1.0, settings=SETTINGS, token=TOKEN)
    points = random_points(in_process_of(npz_lens), 3, seed=5)
    with serve(registry_settings(tmp_path / "state")) as url:
        with Client.register(url, tmp_path / "lens.npz", name="from-npz", **spec) as client:
            assert client.model.name == "from-npz"
            np.testing.assert_allclose(client.log_evidence(points),
                                       expected(in_process_of(npz_lens), points), rtol=1e-12)
        with Client.register(url, fits_dir, pixel_scale=fits_lens.pixel_scale, **spec) as client:
            assert client.model.name.startswith("lens-")
            np.testing.assert_allclose(client.log_evidence(points),
                                       expected(in_process_of(fits_lens), points), rtol=1e-12)

        async def register_async():
            async with await AsyncClient.register(url, object_lens, name="from-object",
                                                  **spec) as client:
                return await client.log_evidence(points)

        np.testing.assert_allclose(asyncio.run(register_async()),
                                   expected(in_process_of(object_lens), points), rtol=1e-12)
        with pytest.raises(ServiceError, match="422.*odd size"):
            Client.register(url, {"data": npz_lens.data, "noise_map": npz_lens.noise_map,
                                  "psf": npz_lens.psf[1:, 1:]},
                            pixel_scale=npz_lens.pixel_scale, **spec)

        done = subprocess.run(
            [sys.executable, "-m", "service.cli", "register", str(tmp_path / "lens.npz"),
             "--url", url, "--name", "from-cli", "--mask-radius", "1.0",
             "--settings", json.dumps(SETTINGS), "--token", TOKEN],
            capture_output=True, text=True, timeout=120, cwd=REPOSITORY)
        assert done.returncode == 0, done.stderr
        printed = json.loads(done.stdout)
        assert printed["name"] == "from-cli" and printed["state"] == "ready"
        client = client_of(url)
        np.testing.assert_array_equal(evaluate(client, "from-cli", points),
                                      evaluate(client, "from-npz", points))


def metric(client: httpx.Client, line_start: str) -> float:
    (line,) = [line for line in client.get("/metrics").text.splitlines()
               if line.startswith(line_start)]
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.timeout(600)
def test_max_models_and_registrations_per_minute_are_enforced_and_in_metrics(tmp_path,
                                                                               client_of):
    settings = registry_settings(tmp_path / "state", max_models=2,
                                 max_registrations_per_minute=4)
    dataset = lens(1.1, 10)
    with serve(settings) as url:
        client = client_of(url)
        for name in ("one", "two"):
            assert client.post("/v1/models", content=packed_body(dataset, name=name),
                               headers=MSGPACK).status_code == 201
        full = client.post("/v1/models", content=packed_body(dataset, name="three"),
                           headers=MSGPACK)
        assert full.status_code == 409 and "max_models = 2" in full.json()["detail"]
        assert client.delete("/v1/models/one").status_code == 200
        assert client.post("/v1/models", content=packed_body(dataset, name="three"),
                           headers=MSGPACK).status_code == 201
        limited = client.post("/v1/models", content=packed_body(dataset, name="four"),
                              headers=MSGPACK)
        assert limited.status_code == 429, limited.text
        assert 0 < int(limited.headers["retry-after"]) <= 60
        assert metric(client, "lensserve_registered_models ") == 2
        assert metric(client, "lensserve_registered_models_max ") == 2
        assert metric(client, "lensserve_registrations_per_minute_max ") == 4
        assert metric(client, 'lensserve_registrations_total{outcome="ready"}') == 3
        assert metric(client, 'lensserve_registrations_total{outcome="full"}') == 1
        assert metric(client, 'lensserve_registrations_total{outcome="rate_limited"}') == 1
