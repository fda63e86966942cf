"""Item 12: every renderer escapes what comes from AWS (and from manifests): a store made by hand
whose name holds newlines, markdown and terminal escapes cannot inject into a plan, a pull-request
summary, the status table or apply's progress lines."""

from __future__ import annotations

import io
import re

from reconciler.apply.progress import Progress
from reconciler.display import fence, markdown, printable
from reconciler.plan.render import render_markdown, render_text
from reconciler.live.status import build_status, render_text as render_status
from tests.plan.test_planner import NOW, live, live_key, live_store, store
from reconciler.plan.desired import DesiredState
from reconciler.plan.model import Plan
from reconciler.plan.planner import diff

HOSTILE = "evil\n## Injected heading\n![pixel](https://attacker.example/p.png) <img src=x> `code` \x1b[31mRED\x1b[0m\r\u202e"


def hostile_plan() -> Plan:
    state = live(live_store(keys=[live_key(1)]), live_store(name=HOSTILE, id="cks-2", keys=()))
    desired = DesiredState(region="us-east-1", stores=(store(keys=()),))
    steps, findings = diff(desired, state, NOW)
    return Plan(region="us-east-1", steps=steps, findings=findings, created_at=NOW,
                target={"account": "123456789012", "region": "us-east-1", "endpoint": None, "sandbox": None})


def test_markdown_plan_keeps_a_hostile_store_name_inside_its_list_item():
    text = render_markdown(hostile_plan())
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    # the only heading is the plan's own
    assert [line for line in text.splitlines() if line.lstrip().startswith("#")] == \
        ["### reconciler plan: us-east-1"]
    assert "![" not in text and not re.search(r"(?<!\\)<img", text)
    line = next(line for line in text.splitlines() if "Injected" in line)
    assert line.startswith("- **evil\\\\n\\#\\# Injected")


def test_text_plan_and_status_show_escapes_not_raw_control_characters():
    plan = hostile_plan()
    for text in (render_text(plan), render_text(plan, color=True),
                 render_status(build_status(live(live_store(name=HOSTILE, keys=()))))):
        assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
        assert re.search(r"\\x1b\\?\[31mRED", text)
        # the name stays on one line: no forged lines
        assert not any(line.startswith("## Injected") for line in text.splitlines())


def test_apply_progress_lines_escape_names():
    out = io.StringIO()
    progress = Progress(fmt="text", stream=out)
    progress({"event": "ok", "step": "pay\x1b[2J:create_store", "message": "created\nfake line", "elapsed": 0.1})
    progress({"event": "wait", "step": "pay\x1b]0;title\x07:connect_store", "state": "CONNECTING", "waited": 1})
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert text.count("\n") == 2 and "\\x1b[2J" in text


def test_escaping_helpers():
    assert printable("plain name") == "plain name"
    assert printable("a\nb\x1bc\x9b\u200bd\ud800") == "a\\nb\\x1bc\\x9b\\u200bd\\ud800"
    assert printable("line1\nline2\x1b", keep_newlines=True) == "line1\nline2\\x1b"
    assert markdown("a|b*c_[d](e)<f>") == "a\\|b\\*c\\_\\[d\\]\\(e\\)\\<f\\>"
    block = fence("x ```` y")
    assert block[0] == "`````" and block[-1] == "`````"
    assert re.fullmatch(r"`{3}", fence("plain")[0])
