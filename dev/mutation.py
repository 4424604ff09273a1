"""`make mutation`: cosmic-ray over the given modules, the given tests run against each mutant.

Not part of `make test`: every mutant reruns the tests, so all of probes/,
comparison/ and verification.py takes hours on two cores. The session lives in
.mutation/ (one per set of modules, resumable: rerunning continues where it
stopped) and the report's last line is the surviving-mutant count.

    python dev/mutation.py MODULE... -- TEST...
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# Per mutant: a mutant that makes the tests hang is killed, and counts as caught.
TIMEOUT_SECONDS = 300


def main(arguments: list[str]) -> int:
    if "--" not in arguments:
        print(__doc__, file=sys.stderr)
        return 64
    split = arguments.index("--")
    modules, tests = arguments[:split], arguments[split + 1 :]
    if not modules or not tests:
        print(__doc__, file=sys.stderr)
        return 64
    key = hashlib.sha256(" ".join([*modules, "--", *tests]).encode()).hexdigest()[:12]
    work = ROOT / ".mutation"
    work.mkdir(exist_ok=True)
    config, session = work / f"{key}.toml", work / f"{key}.sqlite"
    test_command = " ".join(
        [
            shlex.quote(str(BIN / "pytest")),
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            *map(shlex.quote, tests),
        ]
    )
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(modules)}\n"
        f"timeout = {TIMEOUT_SECONDS}.0\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(test_command)}\n"
        '\n[cosmic-ray.distributor]\nname = "local"\n',
        encoding="utf-8",
    )
    cosmic_ray = str(BIN / "cosmic-ray")
    if not session.exists():
        subprocess.run([cosmic_ray, "init", str(config), str(session)], cwd=ROOT, check=True)
        # The tests must pass on the unmutated code, or every mutant would look caught.
        subprocess.run([cosmic_ray, "baseline", str(config)], cwd=ROOT, check=True)
    subprocess.run([cosmic_ray, "exec", str(config), str(session)], cwd=ROOT, check=True)
    # cr-report ends with "total jobs", "complete" and "surviving mutants: N (P%)".
    subprocess.run([str(BIN / "cr-report"), "--show-pending", str(session)], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
