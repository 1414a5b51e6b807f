"""The figures a report can draw: ``FIGURES``, one entry per figure kind, in the order
the page shows them.

Each kind lives in one module that holds its data function (tables in, the aggregate it
draws out), its ``plan`` (whether it applies to these runs, with its data and caption,
or why not) and its drawing function (data in, matplotlib Figure out); a module of
several figures registers each plan and drawing function as its own entry (a plan may
serve several entries through ``partial``). A new figure is one new module and one entry
here; ``..plan`` asks every entry and ``..plan.render``
draws what they planned, in the drawing workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable, Iterator

from . import (closed_form, convergence, curves, depth_fit, frequencies, leaky, mixed,
               neurons, phase, profiles, rank_jumps, remaining, run_spectra, scaling, vs_depth)
from .base import Context, Fig


@dataclass(frozen=True)
class Kind:
    """One figure kind. ``plan(ctx)`` yields the figures that apply (``Fig``: data ready,
    not drawn) and, as text, why those that do not apply were skipped. ``draw(*Fig.args)``
    returns the matplotlib Figure (None: nothing to draw); it runs in a drawing worker.
    ``cost``: rough drawing cost (panels); costly figures are handed out first."""
    plan: Callable[[Context], Iterator[Fig | str]]
    draw: Callable
    cost: int = 2
    per_run: bool = False  # one figure per chosen run, planned before the aggregates


FIGURES: dict[str, Kind] = {
    "run_spectra": Kind(run_spectra.plan, run_spectra.figure, per_run=True),
    "frequencies": Kind(frequencies.plan, frequencies.figure, cost=3),  # one per chosen cnn run
    "rank_profile": Kind(partial(profiles.plan, "rank_profile"), profiles.draw, cost=3),
    "depth_fit": Kind(depth_fit.plan, depth_fit.draw),
    "near_one_profile": Kind(partial(profiles.plan, "near_one_profile"), profiles.draw, cost=3),
    "near_one_rest": Kind(remaining.plan, remaining.figure, cost=3),
    "training_curves": Kind(curves.plan, curves.draw, cost=6),
    "convergence": Kind(convergence.plan, convergence.draw, cost=2),
    "phase": Kind(phase.plan, phase.draw),
    "mixed_phase": Kind(mixed.plan, mixed.draw, cost=4),
    "mixed_dynamics": Kind(mixed.plan_dynamics, mixed.draw_dynamics),
    "ntk_vs_depth": Kind(partial(vs_depth.plan, "ntk_vs_depth"), vs_depth.draw),
    "jacobian_vs_depth": Kind(partial(vs_depth.plan, "jacobian_vs_depth"), vs_depth.draw),
    "cbn_vs_depth": Kind(partial(vs_depth.plan, "cbn_vs_depth"), vs_depth.draw),
    "closed_form": Kind(closed_form.plan, closed_form.draw),
    "neurons_vs_width": Kind(neurons.plan, neurons.draw, cost=3),
    "nonlinearity_profile": Kind(partial(profiles.plan, "nonlinearity_profile"),
                                 profiles.draw, cost=3),
    "rank_over_time": Kind(partial(rank_jumps.plan, "rank_over_time"), rank_jumps.draw_rank,
                           cost=3),
    "loss_plateaus": Kind(partial(rank_jumps.plan, "loss_plateaus"), rank_jumps.draw_plateaus,
                          cost=3),
    "staircase": Kind(partial(rank_jumps.plan, "staircase"), rank_jumps.draw_staircase),
    "leaky_rank": Kind(leaky.plan_rank, leaky.draw_rank),
    "leaky_energies": Kind(leaky.plan_energies, leaky.draw_energies, cost=3),
    "leaky_weights": Kind(leaky.plan_weights, leaky.draw_weights, cost=3),
    "leaky_steps": Kind(leaky.plan_steps, leaky.draw_steps),
    "scaling_fit": Kind(scaling.plan_fit, scaling.draw_fit),
    "rate_heatmap": Kind(scaling.plan_heatmap, scaling.draw_heatmap),
    "arch_compare": Kind(scaling.plan_arch, scaling.draw_arch, cost=3),
}
