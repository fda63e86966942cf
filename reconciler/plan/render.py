"""Plan renderers: text (Terraform-like), json (the plan file format), markdown (PR comments).

Rendering decides nothing: everything shown comes from the Plan.
"""

from __future__ import annotations

import json
from typing import Any

from reconciler.display import fence, markdown, printable
from reconciler.plan.model import Plan, PreflightCheck, Step, iso

_STYLE = {"+": "green", "~": "yellow", "-": "red"}
_FINDING_TITLES = {
    "refused": "Refused (the plan cannot make these changes)",
    "unmanaged_store": "Unmanaged stores (in KMS, in no manifest: never changed)",
    "drift_key": "Drift (keys in managed stores that no manifest declares: never changed)",
    "note": "Notes",
    "warning": "Warnings",
}
_KINDS = ("refused", "warning", "unmanaged_store", "drift_key", "note")


def _params_text(params: dict[str, Any]) -> list[str]:
    lines = []
    for name, value in params.items():
        if name == "changes":
            for field_name, change in value.items():
                lines.append(f"{field_name}: {json.dumps(change['from'])} -> {json.dumps(change['to'])}")
            continue
        if name == "keysEnabled":  # key id -> declared enabled state, set once the store is CONNECTED
            for enabled in (True, False):
                ids = sorted(key for key, wanted in value.items() if wanted is enabled)
                if ids:
                    lines.append(f"then {'enables' if enabled else 'disables'} key(s) {', '.join(ids)} as declared "
                                 "(KMS hides whether a key is enabled while its store is not connected)")
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, sort_keys=True)
        elif not isinstance(value, str):
            value = json.dumps(value)
        lines.append(f"{name} = {value}")
    return lines


def summary_line(plan: Plan) -> str:
    s = plan.summary()
    if not plan.steps and not plan.refusals:
        return "No changes. The live state matches the manifests."
    text = f"Plan: {s['create']} to create, {s['update']} to change, {s['destroy']} to destroy"
    if s["deferred"]:
        text += f", {s['deferred']} deferred"
    if s["refused"]:
        text += f"; {s['refused']} refused"
    if plan.preflight_failures:
        text += (f"; {len(plan.preflight_failures)} preflight check(s) failed: apply refuses until they pass "
                 "(or --skip-preflight)")
    return text + "."


_PREFLIGHT_MARK = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "not_checked": "not checked"}
PREFLIGHT_TITLE = "Preflight (the XKS proxies KMS will call, checked before any change)"


def preflight_line(check: PreflightCheck) -> str:
    """One check: its outcome, what KMS would answer, and the fix (values as the plan holds them)."""
    who = check.store + (f" / {check.key}" if check.key else "")
    text = f"[{_PREFLIGHT_MARK.get(check.status, check.status)}] {who}: {check.check}: {check.message}"
    if check.status in ("fail", "warn") and not text.rstrip().endswith((".", ")", ";")):
        text = text.rstrip() + "."  # the message ends its sentence before "KMS would answer" and "Fix"
    kms = [x for x in (check.exception, check.code) if x]
    if kms and check.status in ("fail", "warn"):
        text += f" KMS would answer: {' / '.join(kms)}."
    if check.fix and check.status in ("fail", "warn"):
        text += f" Fix: {check.fix}."
    return text


def render_text(plan: Plan, *, color: bool = False) -> str:
    """Plain text; with ``color`` the symbols carry rich markup (the CLI prints it on a TTY)."""

    def paint(symbol: str, text: str) -> str:
        return f"[{_STYLE[symbol]}]{text}[/]" if color else text

    def esc(text: str) -> str:
        # every line holds values from AWS or the manifests: make control characters visible,
        # and keep rich from reading a name as markup
        text = printable(text)
        return text.replace("[", "\\[") if color else text

    out: list[str] = []
    out.append(esc(_target_line(plan)))
    out.append("")
    by_store: dict[str, list[Step]] = {}
    for step in plan.steps:
        by_store.setdefault(step.store, []).append(step)
    for store, steps in by_store.items():
        out.append(esc(f"Store {store}:"))
        for step in steps:
            target = f" {step.key}" if step.key else ""
            line = f"  {step.action.symbol} {step.action.value}{target}"
            out.append(paint(step.action.symbol, esc(line)))
            out.append(esc(f"      # {step.reason}"))
            for param in _params_text(step.params):
                out.append(esc(f"      {param}"))
            if step.depends_on:
                out.append(esc(f"      after: {', '.join(step.depends_on)}"))
            if step.deferred_until:
                out.append(paint("~", esc(f"      deferred until {iso(step.deferred_until)}: "
                                          "apply runs this step on a run after that date")))
        out.append("")
    for kind in _KINDS:
        items = [f for f in plan.findings if f.kind == kind]
        if not items:
            continue
        out.append(esc(_FINDING_TITLES[kind] + ":"))
        for f in items:
            who = f"{f.store}" + (f" / {f.key}" if f.key else "")
            text = f"  ! {who}: {f.message}"
            out.append(paint("-", esc(text)) if kind == "refused" else esc(text))
        out.append("")
    if plan.rescue_window:
        out.append(esc("Rescue window (keys pending deletion, or scheduled by this plan, and how to rescue them):"))
        out += [esc(line) for line in _rescue_lines(plan)]
        out.append("")
    if plan.preflight:
        out.append(esc(PREFLIGHT_TITLE + ":"))
        for check in plan.preflight:
            line = esc("  " + preflight_line(check))
            out.append(paint("-", line) if check.status == "fail" else line)
        out.append("")
    destructive = [s for s in plan.steps if s.destructive]
    if destructive:
        out.append(esc(f"{len(destructive)} destructive step(s): apply runs them only with --allow-destroy."))
    out.append(esc(summary_line(plan)))
    return "\n".join(out) + "\n"


def _target_line(plan: Plan) -> str:
    target = plan.target or {}
    where = f"Region {plan.region}"
    if target.get("account"):
        where += f", account {target['account']}"
    if target.get("sandbox"):
        where += " (embedded sandbox)"
    elif target.get("endpoint"):
        where += f" (endpoint {target['endpoint']})"
    if plan.created_at:
        where += f", live state read {iso(plan.created_at)}"
    return where


def _rescue_lines(plan: Plan) -> list[str]:
    lines = []
    for entry in plan.rescue_window:
        quarantine = entry.get("quarantine")
        head = f"  {entry['store']}:"
        if quarantine:
            head += f" quarantine {quarantine['start']} -> {quarantine['end']};"
        if entry.get("storeDeletion"):
            head += f" store deleted from {entry['storeDeletion']}"
        lines.append(head.rstrip(";"))
        for key in entry["keys"]:
            when = "deleted on" if key["scheduled"] else "would be deleted on"
            if key["rescuedByThisPlan"]:
                lines.append(f"    {key['key']}: pending deletion until {key['deletionDate']}; this plan rescues it")
            else:
                lines.append(f"    {key['key']}: {when} {key['deletionDate']}; rescue: {key['rescue']}")
    return lines


def _gantt_name(text: str) -> str:
    # a Mermaid task name ends at ':' and a line at a newline or ';'; '#' starts an entity
    return "".join(c if c.isalnum() or c in " ._-/" else " " for c in text)[:80] or "store"


def _gantt_date(value: str) -> str:
    return value.replace("T", " ")[:16]  # dateFormat YYYY-MM-DD HH:mm


def gantt(plan: Plan) -> list[str]:
    """Each decommission's schedule as a Mermaid gantt chart (GitHub and GitLab draw it)."""
    entries = [e for e in plan.rescue_window if e.get("storeDeletion") or e.get("quarantine")]
    if not entries:
        return []
    lines = ["```mermaid", "gantt", "    title Decommission schedule (UTC)", "    dateFormat YYYY-MM-DD HH:mm",
             "    axisFormat %Y-%m-%d"]
    for n, entry in enumerate(entries):
        lines.append(f"    section {_gantt_name(entry['store'])}")
        quarantine = entry.get("quarantine")
        if quarantine:
            lines.append(f"    quarantine :q{n}, {_gantt_date(quarantine['start'])}, {_gantt_date(quarantine['end'])}")
        dates = sorted(k["deletionDate"] for k in entry["keys"] if not k["rescuedByThisPlan"])
        if dates:
            start = quarantine["end"] if quarantine and quarantine["end"] > entry["today"] else entry["today"]
            start = min(start, *(d for d in dates))
            lines.append(f"    waiting period :w{n}, {_gantt_date(start)}, {_gantt_date(dates[-1])}")
        if entry.get("storeDeletion"):
            lines.append(f"    store deletion :milestone, d{n}, {_gantt_date(entry['storeDeletion'])}, 0d")
        lines.append(f"    today :milestone, t{n}, {_gantt_date(entry['today'])}, 0d")
    return lines + ["```", ""]


def render_json(plan: Plan) -> str:
    return plan.to_json()


def render_markdown(plan: Plan) -> str:
    s = plan.summary()
    out = [f"### reconciler plan: {markdown(plan.region)}", "", markdown(_target_line(plan)), "",
           f"**{summary_line(plan)}**", ""]
    if plan.rescue_window:  # first: what can still be saved, and until when
        out += ["**Rescue window**", ""]
        for entry in plan.rescue_window:
            for key in entry["keys"]:
                what = ("this plan rescues it" if key["rescuedByThisPlan"] else
                        f"{'deleted' if key['scheduled'] else 'would be deleted'} on {key['deletionDate']}; "
                        f"rescue: {key['rescue']}")
                out.append(f"- **{markdown(entry['store'])}** / {markdown(key['key'])}: {markdown(what)}")
            if entry.get("quarantine") and not entry["keys"]:
                q = entry["quarantine"]
                out.append(f"- **{markdown(entry['store'])}**: in quarantine {q['start']} -> {q['end']}; "
                           "rescue: set spec.state: present, then apply")
        out.append("")
        out += gantt(plan)
    if plan.steps:
        out += ["| | step | store | key | reason | deferred until |", "|---|---|---|---|---|---|"]
        for step in plan.steps:
            sym = {"+": "➕", "~": "🔄", "-": "🗑️"}[step.action.symbol]
            out.append(f"| {sym} | `{step.action.value}` | {markdown(step.store)} | {markdown(step.key or '')} | "
                       f"{markdown(step.reason)} | {iso(step.deferred_until) or ''} |")
        out.append("")
        destructive = [x for x in plan.steps if x.destructive]
        if destructive:
            out.append(f"> ⚠️ {len(destructive)} destructive step(s). Deleting a key in a custom key store "
                       "is irreversible once its waiting period ends; apply needs `--allow-destroy`.")
            out.append("")
    for kind in _KINDS:
        items = [f for f in plan.findings if f.kind == kind]
        if items:
            out.append(f"**{_FINDING_TITLES[kind]}**")
            out.append("")
            out += [f"- **{markdown(f.store)}**{' / ' + markdown(f.key) if f.key else ''}: {markdown(f.message)}"
                    for f in items]
            out.append("")
    if plan.preflight:
        out += [f"**{PREFLIGHT_TITLE}**", ""]
        out += [f"- {'❌ ' if c.status == 'fail' else ''}{markdown(preflight_line(c))}" for c in plan.preflight]
        out.append("")
    details = "\n".join(printable(f"{step.id}: {'; '.join(_params_text(step.params))}")
                         for step in plan.steps if step.params)
    if details:
        out += ["<details><summary>Step parameters</summary>", "", *fence(details), "", "</details>", ""]
    out.append(f"<sub>manifests {plan.manifests_digest[:19]} · live state {plan.live_digest[:19]} · "
               f"{s['create']}+ {s['update']}~ {s['destroy']}-</sub>")
    return "\n".join(out) + "\n"


RENDERERS = {"text": render_text, "json": render_json, "markdown": render_markdown}
