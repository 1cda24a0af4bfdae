"""``tests/tools/record_preview.py``: the preview recording comes from the real server's notifications."""

import json
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).parent / "tools" / "record_preview.py"


def test_record_writes_an_asciinema_cast_of_the_preview(tmp_path):
    out = tmp_path / "preview.cast"
    proc = subprocess.run([sys.executable, str(TOOL), str(out), "--steps", "4"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    header, *events = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert header["version"] == 2 and header["width"] > 0 and header["height"] > 0
    times = [e[0] for e in events]
    assert times == sorted(times) and all(e[1] == "o" for e in events)
    frames = [e[2] for e in events]
    assert "step 1" in frames[1] and "applied" in frames[-1]
    assert "\u2591" in frames[1]  # the first step still shows masked tokens
    assert proc.stdout.count("--- step") == len(events) - 2
