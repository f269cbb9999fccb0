"""`report.md`: the fit's stages side by side, linking each stage's pictures, summary and samples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from client.pipeline import Stage, mass_parameters

REPORT = "report.md"


def report_text(stages: Sequence[Stage], summaries: Mapping[str, dict],
                truth: Mapping[str, float] | None, command: Mapping) -> str:
    """The report's Markdown: a table of every stage, then per stage its mass posterior (against
    `truth` in sigma when given) and links to its outputs."""
    lines = ["# lensserve fit", "",
             f"Dataset: `{command['dataset']}` (pixel scale {command.get('pixel_scale')}, mask "
             f"radius {command.get('mask_radius')}); source `{command['source']}`; nautilus "
             f"{dict(command['sampler'])}.", "",
             "| stage | model | log Z | chi^2 / pixel | calls | service batches | wall time |",
             "|---|---|---|---|---|---|---|"]
    for stage in stages:
        summary = summaries.get(stage.name)
        if summary is None:
            lines.append(f"| {stage.name} | not run | | | | | |")
            continue
        lines.append(
            f"| [{stage.name}]({stage.name}/summary.json) | {summary['model']} "
            f"({summary['kind']}, {summary['mass']}) | {summary['log_z']:.2f} +- "
            f"{summary['log_z_error']:.2f} | {summary['chi_squared_per_pixel']:.3f} | "
            f"{summary['likelihood_calls']} | {summary['service_batches']} | "
            f"{summary['wall_time_s']:.0f} s |")
    for stage in stages:
        summary = summaries.get(stage.name)
        if summary is None:
            continue
        lines += ["", f"## {stage.name}", "",
                  f"![fit]({stage.name}/fit.png)", "", f"![corner]({stage.name}/corner.png)", "",
                  f"Samples: [{stage.name}/samples.npz]({stage.name}/samples.npz), "
                  f"[{stage.name}/samples.csv]({stage.name}/samples.csv). Sampling "
                  f"{summary['sampling_time_s']:.0f} s of {summary['wall_time_s']:.0f} s; "
                  f"converged: {summary['converged']}.", ""]
        header = "| parameter | median | 16% | 84% | best fit |"
        rule = "|---|---|---|---|---|"
        if truth:
            header, rule = header + " truth | (median - truth) / sigma |", rule + "---|---|"
        lines += [header, rule]
        for name in mass_parameters(list(summary["parameters"])):
            marginal = summary["parameters"][name]
            row = (f"| `{name}` | {marginal['median']:.4f} | {marginal['p16']:.4f} | "
                   f"{marginal['p84']:.4f} | {summary['best_fit'][name]:.4f} |")
            if truth:
                if name in truth:
                    sigma = (marginal["p84"] - marginal["p16"]) / 2
                    pull = (marginal["median"] - truth[name]) / sigma if sigma > 0 else float("inf")
                    row += f" {truth[name]:.4f} | {pull:+.1f} |"
                else:
                    row += " | |"
            lines.append(row)
    return "\n".join(lines) + "\n"


def write_report(output: Path, stages: Sequence[Stage], summaries: Mapping[str, dict],
                 truth: Mapping[str, float] | None, command: Mapping) -> Path:
    path = output / REPORT
    path.write_text(report_text(stages, summaries, truth, command))
    return path
