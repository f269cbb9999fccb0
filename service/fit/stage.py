"""One stage of `lensserve fit`: a nautilus run through the client, then its outputs.

A stage's directory holds `samples.npz` and `samples.csv` (the posterior points, log-weights and
log-likelihoods), `fit.png` and `corner.png`, and last `summary.json`: a stage is finished when
its summary exists, and a resumed fit starts after the last finished one.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from client import Client
from client.pipeline import Stage, mass_parameters, posterior_summary, prior_to_dict, stage_priors
from service.fit.progress import progress

SUMMARY = "summary.json"
# A request holds at most this many of the model's largest batches (see `run_stage`).
REQUEST_BATCHES = 4
CLIENT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class SamplerSettings:
    """nautilus's settings for every stage (`nautilus.Sampler` and `Sampler.run`); `max_calls`
    and `timeout_s` bound a stage (None: unbounded)."""

    n_live: int = 400
    n_batch: int = 128
    n_eff: int = 2000
    f_live: float = 0.01
    max_calls: int | None = None
    timeout_s: float | None = None
    seed: int = 0


def finished_summary(directory: Path) -> dict | None:
    """The stage's summary if it finished, else None."""
    path = directory / SUMMARY
    return json.loads(path.read_text()) if path.is_file() else None


class Tracked:
    """A likelihood source whose `log_evidence` advances a progress bar by its points and shows
    nautilus's state: the current log Z estimate, the live set's share of the evidence (f_live,
    exploring) or the effective sample size (sampling), and the number of bounds. `sampler` is
    set once the sampler exists; nautilus calls the likelihood from its own thread only."""

    def __init__(self, client: Client, bar) -> None:
        self._client = client
        self._bar = bar
        self.sampler = None

    def log_evidence(self, theta: np.ndarray) -> np.ndarray:
        if self.sampler is not None and self.sampler.bounds:
            self._bar.set_postfix_str(self._state(self.sampler), refresh=False)
        values = self._client.log_evidence(theta)
        self._bar.update(len(values))
        return values

    def _state(self, sampler) -> str:
        log_z = sampler.log_z
        if sampler.explored:
            live = f"sampling, N_eff {sampler.n_eff:.0f}"
        else:
            try:
                live = f"exploring, f_live {sampler.f_live:.3f}"
            except ValueError:  # mid-batch the new shell's points and counts disagree
                live = "exploring"
        return (f"log Z {'n/a' if log_z is None else f'{log_z:.2f}'}, {live}, "
                f"{len(sampler.bounds)} bounds")


def served_batches(url: str, model: str, token: str | None) -> float | None:
    """Batches the service has executed for `model` (`/metrics`; 0 before its first, whose
    labelled series does not exist yet), or None if it has no metrics."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        answer = httpx.get(f"{url}/metrics", headers=headers, timeout=10)
        answer.raise_for_status()
    except httpx.HTTPError:
        return None
    prefix = f'lensserve_batch_size_points_count{{model="{model}"'
    return sum(float(line.rsplit(" ", 1)[1]) for line in answer.text.splitlines()
               if line.startswith(prefix))


def run_stage(stage: Stage, url: str, model_name: str, previous: dict | None, directory: Path,
              settings: SamplerSettings, in_process_model: Callable, *, token: str | None = None,
              quiet: bool = False, truth: dict[str, float] | None = None) -> dict:
    """Run `stage` against the served `model_name`, priors from the `previous` stage's summary
    (None: broad); write its outputs to `directory` and return its summary.
    `in_process_model(description)` builds the same model in-process for the pictures."""
    import nautilus

    directory.mkdir(parents=True, exist_ok=True)
    with Client(url, model_name, token=token) as describing:
        described = describing.model
    # nautilus's batch goes as requests of a few of the model's batches: enough to keep the
    # service's dispatchers busy, few enough that a pixelized request (seconds per point on a
    # busy CPU) is answered well within the service's queue timeout and the client's.
    chunk = REQUEST_BATCHES * max(described.info.get("buckets") or [settings.n_batch])
    with Client(url, model_name, token=token, max_request_points=chunk,
                timeout=CLIENT_TIMEOUT_S) as client:
        served = (described.kind, described.info.get("settings", {}).get("mass"))
        if served != (stage.kind, stage.mass):
            raise ValueError(f"{stage.name} fits a {stage.kind} source with {stage.mass} mass; the "
                             f"served model {model_name} is {served[0]} with {served[1]}")
        priors = stage_priors(described.parameter_names, described.priors,
                              None if previous is None else previous["parameters"])
        model = dataclasses.replace(described, priors=priors)
        batches_before = served_batches(url, model_name, token)
        started = time.monotonic()
        with progress(f"{stage.name}: likelihood calls", "call", quiet) as bar:
            tracked = Tracked(client, bar)
            sampler = nautilus.Sampler(
                model.prior_transform, tracked.log_evidence, n_dim=model.n_params,
                n_live=settings.n_live, n_batch=settings.n_batch, vectorized=True,
                pass_dict=False, seed=settings.seed)
            tracked.sampler = sampler
            sampler.run(f_live=settings.f_live, n_eff=settings.n_eff,
                        n_like_max=settings.max_calls or math.inf,
                        timeout=settings.timeout_s or math.inf, verbose=False)
        sampling_s = time.monotonic() - started
        batches_after = served_batches(url, model_name, token)
        stats = client.stats

    names = model.parameter_names
    points, log_w, log_l = sampler.posterior()
    save_samples(directory, names, points, log_w, log_l)
    summary = posterior_summary(names, points, log_w, log_l, sampler.log_z)

    with progress(f"{stage.name}: the best fit in-process, pictures", quiet=quiet):
        lens_model = in_process_model(described)
        best = np.array([summary["best_fit"][name] for name in names])
        terms = _render(lens_model, best, directory, stage, names, points, log_w, truth)
    summary.update(
        stage=stage.name, model=model_name, kind=described.kind, mass=stage.mass,
        settings=described.info.get("settings", {}), dataset=dict(described.dataset),
        priors={name: prior_to_dict(prior) for name, prior in zip(names, priors, strict=True)},
        chi_squared_per_pixel=terms["chi_squared_per_pixel"], fit_terms=terms,
        wall_time_s=time.monotonic() - started, sampling_time_s=sampling_s,
        likelihood_calls=int(sampler.n_like), http_requests=stats.requests,
        service_batches=(None if batches_before is None or batches_after is None
                         else int(batches_after - batches_before)),
        sampler=dataclasses.asdict(settings), converged=bool(sampler.explored and
                                                             sampler.n_eff >= settings.n_eff),
    )
    # Written whole, then renamed: an interrupted write leaves no summary, so no finished stage.
    partial = directory / f"{SUMMARY}.partial"
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    partial.replace(directory / SUMMARY)
    return summary


def _render(lens_model, best: np.ndarray, directory: Path, stage: Stage, names, points, log_w,
            truth) -> dict:
    from service.fit.pictures import corner_plot, render_fit

    terms = render_fit(lens_model, best, directory / "fit.png",
                       f"{stage.name}: {stage.kind} source, {stage.mass} + shear, best fit")
    mass = mass_parameters(names)
    columns = [names.index(name) for name in mass]
    corner_plot(mass, points[:, columns], log_w, directory / "corner.png",
                f"{stage.name}: mass posterior", truth)
    return terms


def save_samples(directory: Path, names, points: np.ndarray, log_w: np.ndarray,
                 log_l: np.ndarray) -> None:
    np.savez(directory / "samples.npz", names=np.array(names), points=points, log_weight=log_w,
             log_likelihood=log_l)
    with open(directory / "samples.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow([*names, "log_weight", "log_likelihood"])
        for row, w, ll in zip(points, log_w, log_l, strict=True):
            writer.writerow([*(repr(float(v)) for v in row), repr(float(w)), repr(float(ll))])
