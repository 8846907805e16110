"""Benchmark: importing card codes from .xlsx, end to end, against the floor on the same machine.

Usage (from the repository root)::

    .venv/bin/python bench/import_codes.py                    # 100,000 codes, 3 rounds
    .venv/bin/python bench/import_codes.py --rows 1000000 --rounds 1   # the memory check
    DATABASE_URL=postgres://… .venv/bin/python bench/import_codes.py   # an existing (scratch!) database

Without ``DATABASE_URL`` it starts its own PostgreSQL (``kameng.localservices.PostgresServer``,
durable settings: fsync and synchronous_commit on) in a temporary directory and deletes it
afterwards (with ``DATABASE_URL``, pass ``--pg-data DIR`` of that cluster to get its CPU time).
It migrates the database, seeds the demo shop (so the stock table is not empty), writes N codes
(with an 8-digit password each) as an .xlsx the way Excel does — strings in
``xl/sharedStrings.xml``, which openpyxl keeps in memory, the worst case for memory — and then,
round after round, runs each step in a fresh child process (so that peak RSS is the step's own):

* **import**: ``catalog.imports`` exactly as the admin and ``manage.py import_codes`` use it:
  ``create_batch`` (check + encrypted store of the upload) → ``parse_batch`` (stream, validate,
  encrypt, fingerprint, mask, stage with COPY, mark duplicates / in-stock in SQL) →
  ``request_commit`` → ``commit_batch`` (``INSERT … SELECT … ON CONFLICT``, delete staging rows),
  into a fresh SKU each round;
* **floor** (the issue's definition): openpyxl read-only parse of the same file +
  ``codes.encrypt`` and ``codes.fingerprint`` of the same codes (COPY lines to a temporary file),
  then ``COPY`` of the same rows into a scratch table shaped like ``catalog_cardcode`` (``LIKE …
  INCLUDING ALL``: same columns and indexes, the unique one included) — the sum of both;
* **floor with compact strings**: the same with the import's compact shared-string table instead
  of openpyxl's list (the apples-to-apples floor for the import);
* **streaming floor**: the same work as one streaming COPY, PostgreSQL ingesting while Python
  parses — stricter still.

It prints each round, the medians, the import/floor ratios (target ≤ 1.5), CPU time (Python and
PostgreSQL; steadier than wall time on a busy machine) and each step's peak RSS (target: under
300 MB for 1,000,000 rows). ``--inline-strings`` writes the cells inline (what openpyxl itself
writes) instead of shared strings. Method and results: docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# --- The file ------------------------------------------------------------------------------------------
def code_of(n: int) -> tuple[str, str]:
    digest = hashlib.blake2b(n.to_bytes(8, "little"), digest_size=12, key=b"kameng-bench").hexdigest().upper()
    return f"{digest[:4]}-{digest[4:8]}-{digest[8:12]}-{digest[12:16]}", digest[16:24]


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument"'
    ' Target="xl/workbook.xml"/></Relationships>'
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Codes" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet"'
    ' Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"'
    ' Target="sharedStrings.xml"/></Relationships>'
)
_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"


def write_xlsx(path: Path, rows: int, *, inline: bool) -> None:
    """Header (卡号 / 卡密) + ``rows`` codes with passwords, written in a streaming way."""
    header = ["卡号\nCode", "卡密\nPassword"]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("xl/workbook.xml", _WORKBOOK)
        archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet xmlns="{_MAIN_NS}">'
                f'<dimension ref="A1:B{rows + 1}"/><sheetData>'.encode()
            )
            buffer = []
            for r in range(rows + 1):
                cells = header if r == 0 else code_of(r)
                if inline:
                    row = "".join(
                        f'<c r="{col}{r + 1}" t="inlineStr"><is><t>{text}</t></is></c>'
                        for col, text in zip("AB", cells, strict=True)
                    )
                else:
                    row = f'<c r="A{r + 1}" t="s"><v>{2 * r}</v></c><c r="B{r + 1}" t="s"><v>{2 * r + 1}</v></c>'
                buffer.append(f'<row r="{r + 1}">{row}</row>')
                if len(buffer) >= 10_000:
                    sheet.write("".join(buffer).encode())
                    buffer.clear()
            sheet.write(("".join(buffer) + "</sheetData></worksheet>").encode())
        with archive.open("xl/sharedStrings.xml", "w", force_zip64=True) as strings:
            count = 0 if inline else 2 * (rows + 1)
            strings.write(
                f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<sst xmlns="{_MAIN_NS}" count="{count}" uniqueCount="{count}">'.encode()
            )
            if not inline:
                buffer = []
                for r in range(rows + 1):
                    for text in header if r == 0 else code_of(r):
                        buffer.append(f"<si><t>{text}</t></si>")
                    if len(buffer) >= 20_000:
                        strings.write("".join(buffer).encode())
                        buffer.clear()
                strings.write("".join(buffer).encode())
            strings.write(b"</sst>")


# --- Child steps (each in its own process) ----------------------------------------------------------------
def _django():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kameng.settings")
    import django

    django.setup()


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def postgres_cpu(data_dir: Path | None) -> float | None:
    """CPU seconds used so far by the cluster's postmaster and its exited children (the
    backends of finished steps, autovacuum workers), from /proc. None when not measurable."""
    if data_dir is None:
        return None
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError, IndexError):
        return None
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return (utime + stime + cutime + cstime) / os.sysconf("SC_CLK_TCK")


def step_setup(_args) -> dict:
    _django()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from catalog.demo import seed_demo

    shop = seed_demo(with_users=False)
    return {"product": shop.products["steam-wallet"].pk}


def step_import(args) -> dict:
    _django()
    from catalog import imports
    from catalog.models import CardCode, ImportBatch, Product, Sku
    from kameng.celery import app

    # As in production: tasks that listeners of stock_changed queue (low-stock checks) go to the
    # broker (here an in-memory one nobody consumes) instead of running inside the import.
    app.conf.task_always_eager = False

    product = Product.objects.get(pk=args.product)
    sku = Sku.objects.create(product=product, label=f"bench-{time.time_ns()}", price_fen=100)
    phases = {}
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    with open(args.file, "rb") as upload:
        batch = imports.create_batch(
            product=product, sku=sku, upload=upload, filename="bench.xlsx", max_bytes=None, enqueue=False
        )
    phases["check+store"] = time.perf_counter() - start
    mark = time.perf_counter()
    imports.parse_batch(batch_id=batch.pk)
    phases["parse+stage"] = time.perf_counter() - mark
    batch.refresh_from_db()
    if batch.status != ImportBatch.Status.READY or batch.valid_rows != args.rows:
        raise SystemExit(f"import did not check out: {batch.status} {batch.valid_rows} {batch.failure}")
    mark = time.perf_counter()
    imports.request_commit(batch=batch, enqueue=False)
    imports.commit_batch(batch_id=batch.pk)
    phases["commit"] = time.perf_counter() - mark
    total = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    batch.refresh_from_db()
    assert batch.imported_rows == args.rows == CardCode.objects.filter(sku=sku).count(), batch.imported_rows
    return {"seconds": total, "cpu": cpu, "phases": phases, "peak_rss_mb": _peak_rss_mb()}


def _scratch_table(connection) -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_floor")
        cursor.execute("CREATE TABLE bench_floor (LIKE catalog_cardcode INCLUDING ALL)")


_FLOOR_COPY = (
    "COPY bench_floor (sku_id, payload, fingerprint, hint, status, reusable, times_sold, created_at) FROM STDIN"
)


def _floor_lines(workbook, sku_id: int, now: str):
    """Parse, encrypt and fingerprint: one COPY line per code."""
    from catalog import codes

    for code, password in workbook.worksheets[0].iter_rows(min_row=2, values_only=True):
        payload = codes.encrypt(codes.Secret(code=code, password=password))
        yield f"{sku_id}\t{payload}\t{codes.fingerprint(code)}\t\tavailable\tf\t0\t{now}\n"


def _floor_done(connection, rows: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM bench_floor")
        copied = cursor.fetchone()[0]
        cursor.execute("DROP TABLE bench_floor")
    assert copied == rows, copied


def step_floor(args, *, compact: bool = False) -> dict:
    """The brief's floor: openpyxl read-only parse + encrypt/fingerprint (lines to a temporary
    file, so memory stays flat), then COPY of those rows; the sum of both. ``compact``: load the
    shared strings with the import's compact table instead of openpyxl's list."""
    _django()
    from django.db import connection
    from django.utils import timezone
    from openpyxl import load_workbook

    from catalog.models import Product, Sku

    sku = Sku.objects.create(product=Product.objects.get(pk=args.product), label=f"floor-{time.time_ns()}", price_fen=1)
    _scratch_table(connection)
    now = timezone.now().isoformat()
    with tempfile.TemporaryFile("w+", encoding="utf-8") as lines:
        cpu_start = _cpu_seconds()
        start = time.perf_counter()
        if compact:
            from catalog.imports.readers import _load_workbook

            workbook = _load_workbook(open(args.file, "rb"))  # noqa: SIM115 (closed with the workbook)
        else:
            workbook = load_workbook(args.file, read_only=True)
        lines.writelines(_floor_lines(workbook, sku.pk, now))
        workbook.close()
        parsed = time.perf_counter()
        lines.seek(0)
        with connection.cursor() as cursor:
            cursor.cursor.copy_expert(_FLOOR_COPY, lines)
        copied = time.perf_counter()
    cpu = _cpu_seconds() - cpu_start
    _floor_done(connection, args.rows)
    return {
        "seconds": copied - start,
        "cpu": cpu,
        "phases": {"parse+encrypt+fingerprint": parsed - start, "copy": copied - parsed},
        "peak_rss_mb": _peak_rss_mb(),
    }


def step_stream_floor(args) -> dict:
    """A stricter floor: the same work as one streaming COPY, so PostgreSQL ingests rows while
    Python parses and encrypts the next ones (the two overlap on two CPUs)."""
    _django()
    import io

    from django.db import connection
    from django.utils import timezone
    from openpyxl import load_workbook

    from catalog.models import Product, Sku

    sku = Sku.objects.create(
        product=Product.objects.get(pk=args.product), label=f"stream-{time.time_ns()}", price_fen=1
    )
    _scratch_table(connection)
    now = timezone.now().isoformat()

    class Lines(io.RawIOBase):
        def __init__(self, lines):
            self.lines, self.pending = lines, b""

        def readable(self):
            return True

        def readinto(self, buffer):
            while len(self.pending) < len(buffer):
                chunk = "".join(line for _, line in zip(range(1000), self.lines, strict=False))
                if not chunk:
                    break
                self.pending += chunk.encode()
            size = min(len(buffer), len(self.pending))
            buffer[:size], self.pending = self.pending[:size], self.pending[size:]
            return size

    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    workbook = load_workbook(args.file, read_only=True)
    with connection.cursor() as cursor:
        cursor.cursor.copy_expert(_FLOOR_COPY, io.BufferedReader(Lines(_floor_lines(workbook, sku.pk, now)), 1 << 16))
    total = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
    workbook.close()
    _floor_done(connection, args.rows)
    return {"seconds": total, "cpu": cpu, "peak_rss_mb": _peak_rss_mb()}


def step_generate(args) -> dict:
    start = time.perf_counter()
    write_xlsx(Path(args.file), args.rows, inline=args.inline_strings)
    return {"seconds": time.perf_counter() - start, "bytes": Path(args.file).stat().st_size}


STEPS = {
    "setup": step_setup,
    "import": step_import,
    "floor": step_floor,
    "floor-compact": lambda args: step_floor(args, compact=True),
    "stream-floor": step_stream_floor,
    "generate": step_generate,
}


# --- Orchestration --------------------------------------------------------------------------------------
def run_step(name: str, args, env: dict, extra: list[str] | None = None) -> dict:
    pg_before = postgres_cpu(args.pg_data)
    command = [sys.executable, __file__, "--step", name, "--rows", str(args.rows), "--file", str(args.file)]
    if args.product:
        command += ["--product", str(args.product)]
    if args.inline_strings:
        command.append("--inline-strings")
    result = subprocess.run(command + (extra or []), env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{result.stdout}\n{result.stderr}")
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    time.sleep(0.3)  # let the postmaster reap the step's backends
    pg_after = postgres_cpu(args.pg_data)
    if pg_before is not None and pg_after is not None and "cpu" in outcome:
        outcome["pg_cpu"] = pg_after - pg_before
    return outcome


def phases(result: dict) -> str:
    return ", ".join(f"{name} {seconds:.2f}s" for name, seconds in result.get("phases", {}).items())


def per_round(runs: list[dict], bases: list[dict]) -> str:
    return " ".join(f"{run['seconds'] / base['seconds']:.2f}" for run, base in zip(runs, bases, strict=True))


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{cpu}, {os.cpu_count()} CPUs, {memory:.1f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inline-strings", action="store_true")
    parser.add_argument(
        "--pg-data", type=Path, help="data directory of the cluster behind DATABASE_URL (for its CPU figures)"
    )
    parser.add_argument("--step", choices=sorted(STEPS), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--product", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.step:
        print(json.dumps(STEPS[args.step](args)))
        return

    scratch = Path(tempfile.mkdtemp(prefix="kameng-bench-"))
    scratch.chmod(0o755)
    server = None
    try:
        env = dict(os.environ)
        if not env.get("DATABASE_URL"):
            from kameng.localservices import PostgresServer

            server = PostgresServer(scratch / "postgres", durable=True)
            env["DATABASE_URL"] = server.start(database="kameng_bench")
            args.pg_data = scratch / "postgres" / "data"
        env.update(
            KAMENG_IGNORE_ENV_FILE="1",
            DEBUG="true",
            REDIS_URL="",
            CARD_CODE_KEYS=env.get("CARD_CODE_KEYS") or base64.urlsafe_b64encode(os.urandom(32)).decode(),
            IMPORT_UPLOAD_DIR=str(scratch / "uploads"),
        )
        args.file = scratch / "codes.xlsx"
        print(f"machine: {machine()}")
        args.product = run_step("setup", args, env)["product"]
        generated = run_step("generate", args, env)
        kind = "inline strings" if args.inline_strings else "shared strings"
        print(f"file: {args.rows:,} codes + passwords, {generated['bytes'] / 2**20:.1f} MB .xlsx ({kind})")

        imports, floors, compacts, streams = [], [], [], []
        for round_ in range(1, args.rounds + 1):
            floors.append(run_step("floor", args, env))
            compacts.append(run_step("floor-compact", args, env))
            streams.append(run_step("stream-floor", args, env))
            imports.append(run_step("import", args, env))
            print(
                f"round {round_}: floor {floors[-1]['seconds']:.2f}s ({phases(floors[-1])}), "
                f"floor with compact strings {compacts[-1]['seconds']:.2f}s, "
                f"streaming floor {streams[-1]['seconds']:.2f}s, "
                f"import {imports[-1]['seconds']:.2f}s ({phases(imports[-1])})"
            )
        floor = statistics.median(r["seconds"] for r in floors)
        compact = statistics.median(r["seconds"] for r in compacts)
        stream = statistics.median(r["seconds"] for r in streams)
        imported = statistics.median(r["seconds"] for r in imports)
        print(
            f"median of {args.rounds}: floor {floor:.2f}s, import {imported:.2f}s -> ratio {imported / floor:.2f} "
            f"(per round {per_round(imports, floors)}); against the floor with compact strings {compact:.2f}s: "
            f"{imported / compact:.2f} (per round {per_round(imports, compacts)}); "
            f"against the streaming floor {stream:.2f}s: "
            f"{imported / stream:.2f} (per round {per_round(imports, streams)}); {args.rows / imported:,.0f} codes/s"
        )
        if all("pg_cpu" in r for r in imports + floors + compacts + streams):

            def cpu(runs: list[dict]) -> str:
                python = statistics.median(r["cpu"] for r in runs)
                database = statistics.median(r["pg_cpu"] for r in runs)
                return f"{python + database:.2f}s ({python:.2f}s Python + {database:.2f}s PostgreSQL)"

            def total(runs: list[dict]) -> float:
                return statistics.median(r["cpu"] + r["pg_cpu"] for r in runs)

            print(
                f"CPU time, median: import {cpu(imports)}, floor {cpu(floors)}, floor with compact strings "
                f"{cpu(compacts)}, streaming floor {cpu(streams)}; import/floor {total(imports) / total(floors):.2f}, "
                f"import/floor with compact strings {total(imports) / total(compacts):.2f}"
            )
        print(
            "peak RSS: "
            + ", ".join(
                f"{name} {max(r['peak_rss_mb'] for r in runs):.0f} MB"
                for name, runs in (
                    ("import", imports),
                    ("floor", floors),
                    ("floor with compact strings", compacts),
                    ("streaming floor", streams),
                )
            )
        )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
