"""Rendering a fleet plan: a section per account/region (each rendered as a one-target plan is),
then the summary per target. :data:`RENDERERS` renders either kind of plan. Decides nothing."""

from __future__ import annotations

from typing import Any

from reconciler.display import markdown, printable
from reconciler.plan import render
from reconciler.plan.fleet_model import FleetPlan, Section


def _counts(section: Section) -> str:
    if section.plan is None:
        return "failed: not read"
    s = section.plan.summary()
    text = f"{s['create']} to create, {s['update']} to change, {s['destroy']} to destroy"
    text += f", {s['deferred']} deferred" if s["deferred"] else ""
    return text + (f"; {s['refused']} refused" if s["refused"] else "")


def summary_line(plan: FleetPlan) -> str:
    t = plan.summary()["total"]
    text = (f"Fleet plan: {len(plan.sections)} target(s): {t['create']} to create, {t['update']} to change, "
            f"{t['destroy']} to destroy")
    text += f", {t['deferred']} deferred" if t["deferred"] else ""
    text += f"; {t['refused']} refused" if t["refused"] else ""
    text += f"; {t['failedTargets']} target(s) could not be read" if t["failedTargets"] else ""
    return text + "."


def render_text(plan: FleetPlan, *, color: bool = False) -> str:
    def esc(text: str) -> str:
        text = printable(text)
        return text.replace("[", "\\[") if color else text

    out: list[str] = []
    for section in plan.sections:
        out.append(esc(f"=== Target {section.id} ==="))
        if section.plan is None:
            out.append(esc(f"  ✗ not read: {section.error}"))
            out.append("")
            continue
        out.append(render.render_text(section.plan, color=color))
    out.append(esc("Targets:"))
    width = max((len(s.id) for s in plan.sections), default=0)
    for section in plan.sections:
        out.append(esc(f"  {section.id.ljust(width)}  {_counts(section)}"))
    out.append(esc(summary_line(plan)))
    return "\n".join(out) + "\n"


def render_markdown(plan: FleetPlan) -> str:
    out = ["## reconciler fleet plan", "", f"**{summary_line(plan)}**", "",
           "| target | create | change | destroy | deferred | refused |", "|---|---|---|---|---|---|"]
    for section in plan.sections:
        if section.plan is None:
            out.append(f"| {markdown(section.id)} | ✗ not read: {markdown(section.error or '')} | | | | |")
            continue
        s = section.plan.summary()
        out.append(f"| {markdown(section.id)} | {s['create']} | {s['update']} | {s['destroy']} | {s['deferred']} | "
                   f"{s['refused']} |")
    out.append("")
    for section in plan.sections:
        if section.plan is not None:
            title = f"### reconciler plan: {markdown(section.plan.region)}"
            out.append(render.render_markdown(section.plan).replace(title, f"### Target {markdown(section.id)}", 1))
    return "\n".join(out) + "\n"


def render_json(plan: FleetPlan) -> str:
    return plan.to_json()


def _dispatch(name: str):
    fleet = {"text": render_text, "json": render_json, "markdown": render_markdown}[name]
    single = render.RENDERERS[name]

    def renderer(plan: Any, **kwargs: Any) -> str:
        return (fleet if isinstance(plan, FleetPlan) else single)(plan, **kwargs)

    return renderer


RENDERERS = {name: _dispatch(name) for name in ("text", "json", "markdown")}
