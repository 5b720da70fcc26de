"""Every curl example of docs/api.md, run as printed against a live server holding the demo
examples (trader 91350100M000100Y43, Taobao shop tb-123456), and its answer held to the
output the docs print after it.

The documented output is a shape: every key it shows must be in the answer with a value of
the same JSON type, "..." stands for anything (a "...": "..." key for more keys), and the
values a platform keys its logic on (kind, input, result, counts, codes) must be equal.
The server holds the demo examples plus a proposed measure on the example trader and a
signed checkpoint, as the docs' outputs show.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from creditledger.ledger.actors import Actor
from creditledger.ledger.services import checkpoint_create
from penalties.demo.examples import EXAMPLE_PLATFORM, EXAMPLE_USCC, ensure_examples
from penalties.services.restrictions import restriction_impose
from traders.models import ApiKey, Platform, Trader

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
EXACT = {"kind", "input", "result", "found", "not_found", "invalid", "code", "platform_shop_id", "has_more"}
# A statement of reasons differs by the measure's basis (score, rule, manual): only its being
# an object is held to the docs.
LOOSE = {"reasons"}
BLOCK = re.compile(r"```(sh|json)\n(.*?)```", re.S)


def _examples() -> list[tuple[str, str | None]]:
    """(curl command, the JSON block right after it or None), in the docs' order."""
    blocks = [(m.group(1), m.group(2), m.start(), m.end()) for m in BLOCK.finditer(DOC.read_text())]
    text = DOC.read_text()
    found = []
    for i, (kind, body, _start, end) in enumerate(blocks):
        if kind != "sh":
            continue
        for command in re.findall(r"^curl .*?(?<!\\)$", body.replace("\\\n", " \\\n"), re.M | re.S):
            command = command.replace("\\\n", " ")
            following = blocks[i + 1] if i + 1 < len(blocks) else None
            output = None
            if following and following[0] == "json" and not text[end : following[2]].strip():
                output = following[1]
            found.append((command, output))
    return found


EXAMPLES = _examples()


def _same_shape(documented, actual, path: str = "") -> list[str]:
    if documented == "...":
        return []
    if isinstance(documented, dict):
        if not isinstance(actual, dict):
            return [f"{path}: documented an object, got {type(actual).__name__}"]
        problems = []
        for key, value in documented.items():
            if key == "...":
                continue
            if key not in actual:
                problems.append(f"{path}.{key}: documented, missing from the answer")
                continue
            if key in LOOSE:
                if not isinstance(actual[key], type(value)):
                    problems.append(f"{path}.{key}: documented a {type(value).__name__}")
                continue
            problems += _same_shape(value, actual[key], f"{path}.{key}")
            if (
                key in EXACT
                and not isinstance(value, (dict, list))
                and value != "..."
                and value != actual[key]
            ):
                problems.append(f"{path}.{key}: documented {value!r}, got {actual[key]!r}")
        return problems
    if isinstance(documented, list):
        if not isinstance(actual, list):
            return [f"{path}: documented a list, got {type(actual).__name__}"]
        if documented == ["..."]:
            return []
        if documented and all(isinstance(d, dict) and "action" in d for d in documented):
            # Feed entries: each documented one against the answer's first of its action.
            problems = []
            for d in documented:
                same = [a for a in actual if isinstance(a, dict) and a.get("action") == d["action"]]
                if not same:
                    problems.append(f"{path}: no {d['action']} entry in the answer")
                else:
                    problems += _same_shape(d, same[0], f"{path}[{d['action']}]")
            return problems
        if len(actual) < len(documented):
            return [f"{path}: documented {len(documented)} items, got {len(actual)}"]
        return [p for i, item in enumerate(documented) for p in _same_shape(item, actual[i], f"{path}[{i}]")]
    if documented is None or actual is None:
        return [] if documented is None or path.endswith(("_at", "_deadline", "_on")) else [f"{path}: null"]
    if type(documented) is not type(actual) and not (isinstance(documented, int) and isinstance(actual, int)):
        return [f"{path}: documented a {type(documented).__name__}, got {type(actual).__name__}"]
    return []


def test_the_docs_have_curl_examples_with_their_outputs():
    assert len(EXAMPLES) >= 6
    assert sum(output is not None for _command, output in EXAMPLES) >= 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("command", "output"), EXAMPLES, ids=[c.split('"$CL')[-1][:60] for c, _o in EXAMPLES]
)
def test_each_curl_example_answers_as_documented(live_server, supervisor, command, output, settings):
    settings.ALLOWED_HOSTS = ["*"]
    ensure_examples()
    # The state the docs print: the example trader under a proposed measure, a checkpoint signed.
    restriction_impose(
        actor=Actor.for_user(supervisor),
        trader=Trader.objects.get(uscc=EXAMPLE_USCC),
        measure="listing_restricted",
        reason="详情页多次虚假宣传，约谈后仍未整改",
    )
    checkpoint_create()
    _key, raw = ApiKey.objects.create_key(
        name="docs", platform=Platform.objects.get(code=EXAMPLE_PLATFORM), scopes=list(ApiKey.Scope.values)
    )
    run = subprocess.run(
        ["bash", "-c", command],
        env={"PATH": "/usr/bin:/bin", "CL": live_server.url, "KEY": raw},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    if "%{http_code}" in command:
        assert run.stdout.strip() in {"200", "304"}, run.stdout
        return
    answer = json.loads(run.stdout)
    assert "code" not in answer or "fields" not in answer, f"an error: {answer}"
    if output is not None:
        documented = json.loads(output)
        problems = _same_shape(documented, answer)
        assert not problems, (
            "\n".join(problems) + f"\n\nanswer: {json.dumps(answer, ensure_ascii=False)[:2000]}"
        )
