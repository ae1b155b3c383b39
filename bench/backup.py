"""``assay admin backup`` / ``restore`` at scale: wall time, CPU and peak memory of each, as real processes.

    .venv/bin/python bench/backup.py [--files 20000] [--file-kb 8] [--big-mb 300] [--users 10000] [--output FILE]

Builds a site on SQLite with ``--users`` accounts (rows), ``--files`` small stored files and one large one,
backs it up, restores the archive into a new empty site and checks the restored files' count and bytes.
Peak memory is the process's maximum resident set (``wait4``): it stays flat as files grow, since both
commands stream. Writes JSON (default ``bench/results/backup.json``) with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from measure import load_average, machine  # noqa: E402

ASSAY = Path(sys.executable).with_name("assay")
USERS = """
from django.contrib.auth import get_user_model
User = get_user_model()
User.objects.bulk_create([User(username=f"user{i}", email=f"user{i}@example.org") for i in range({n})], batch_size=2000)
"""


def site_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
    env.update(ASSAY_VAR_DIR=str(root / "var"), ASSAY_DATABASE_URL=f"sqlite:///{root / 'db.sqlite3'}")
    return env


def measured(args: list[str], env: dict[str, str]) -> dict:
    """Run ``assay *args``; its wall seconds, CPU seconds (user + system) and peak resident memory."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(ASSAY), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read().decode() if proc.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"assay {' '.join(args)} failed: {out}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
        "load_average_after": load_average(),
        "said": out.strip().splitlines()[-1] if out.strip() else "",
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--file-kb", type=int, default=8)
    parser.add_argument("--big-mb", type=int, default=300)
    parser.add_argument("--users", type=int, default=10000)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "backup.json")
    opts = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="assay-bench-backup-") as tmp:
        source, target = Path(tmp) / "source", Path(tmp) / "target"
        env = site_env(source)
        subprocess.run([ASSAY, "manage", "migrate", "-v", "0"], env=env, check=True)
        subprocess.run([ASSAY, "manage", "shell", "-c", USERS.replace("{n}", str(opts.users))], env=env, check=True)
        media = source / "var" / "media" / "submissions"
        for i in range(opts.files):
            folder = media / f"{i // 100:05d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"f{i}.bin").write_bytes(os.urandom(opts.file_kb * 1024))
        with open(source / "var" / "media" / "big.bin", "wb") as fh:
            for _ in range(opts.big_mb):
                fh.write(os.urandom(1 << 20))
        total = opts.files * opts.file_kb * 1024 + opts.big_mb * (1 << 20)
        result = {"machine": machine(), "files": opts.files + 1, "bytes": total, "users": opts.users}
        archive = Path(tmp) / "site.tar"
        result["backup"] = measured(["admin", "backup", str(archive)], env)
        result["archive_bytes"] = archive.stat().st_size
        result["restore"] = measured(["admin", "restore", str(archive)], site_env(target))
        restored = [p for p in (target / "var" / "media").rglob("*") if p.is_file()]
        assert len(restored) == opts.files + 1 and sum(p.stat().st_size for p in restored) == total, (
            "restore lost files"
        )
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(result, indent=1) + "\n")
    for step in ("backup", "restore"):
        r = result[step]
        print(
            f"{step:8} {r['wall_s']:7.1f} s wall  {r['cpu_s']:6.1f} s CPU  {r['peak_rss_mb']:6.1f} MB peak"
            f"  ({r['said']})"
        )
    print(f"machine: {result['machine']['cpus']} CPUs, load at start {result['machine']['load_average_at_start']}")
    return result


if __name__ == "__main__":
    main()
