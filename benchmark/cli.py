"""The command line behind `python run_all.py`: list plugins, plan, run a suite, write runs.csv and the report."""
from __future__ import annotations

import argparse
import math
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmark.hardware import PRECISIONS
from benchmark.suites import SUITES

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _names(values: Sequence[str] | None) -> list[str] | None:
    """Accept both `--methods a b` and `--methods a,b` (commas inside [...] are kept)."""
    if not values:
        return None
    out: list[str] = []
    for v in values:
        out.extend(s.strip() for s in re.split(r",(?![^\[]*\])", v) if s.strip())
    return out


def _seeds(values: Sequence[str] | None) -> list[int] | None:
    """'0 1 2', '0,1,2' or '0-4' -> a list of seeds."""
    if not values:
        return None
    out: list[int] = []
    for token in _names(values) or []:
        m = re.fullmatch(r"(\d+)-(\d+)", token)
        if m:
            lo, hi = int(m.group(1)), int(m.group(2))
            if hi < lo:
                raise argparse.ArgumentTypeError(f"empty seed range {token!r}")
            out.extend(range(lo, hi + 1))
        elif token.isdigit():
            out.append(int(token))
        else:
            raise argparse.ArgumentTypeError(f"invalid seed {token!r}: give integers >= 0, e.g. 0,1,2 or 0-4")
    return out


def _device(value: str) -> str:
    if value in ("auto", "cpu", "cuda") or re.fullmatch(r"cuda:\d+", value):
        return value
    raise argparse.ArgumentTypeError(f"invalid device {value!r}; choose auto, cpu, cuda or cuda:N")


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return n


def _positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        x = 0.0
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {value!r}")
    return x


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (static choices are checked by argparse; plugin names by the registries)."""
    p = argparse.ArgumentParser(
        prog="run_all.py",
        description="Benchmark self-supervised multimodal HAR methods: run a suite of cells (dataset x method x "
                    "protocol x seed), store one record per cell and build the report.",
    )
    p.add_argument("--suite", choices=sorted(SUITES), default=None,
                   help="which suite to run (default: smoke; with --report-only: the suite that wrote the folder)")
    p.add_argument("--list", action="store_true", help="list datasets, methods, protocols, backbones and suites")
    p.add_argument("--plugins", nargs="+", metavar="FILE.py", default=[],
                   help="plugin files kept outside the project (a method or dataset each); added to $MMHAR_PLUGINS")
    p.add_argument("--datasets", nargs="+", metavar="NAME", help="only these datasets (comma or space separated)")
    p.add_argument("--methods", nargs="+", metavar="VARIANT",
                   help="only these methods or variants: NAME, NAME[modality] or NAME[key=value,...] (see --list)")
    p.add_argument("--protocols", nargs="+", metavar="NAME",
                   help="only these protocols or protocol variants, e.g. knn, paper_head[bn_mode=frozen]")
    p.add_argument("--seeds", nargs="+", metavar="SEED", help="seeds to run, e.g. 0,1,2 or 0-4")
    p.add_argument("--split", metavar="NAME",
                   help="run on this split (or every split of this family, e.g. xsub_folds) instead of each "
                        "dataset's default (see --list)")
    p.add_argument("--epochs-scale", type=_positive_float, metavar="X",
                   help="multiply every epoch count of the suite by X (at least 1 epoch)")
    p.add_argument("--results", type=Path, metavar="DIR", help="results folder (default: results/<suite>)")
    p.add_argument("--data-root", metavar="DIR", help="folder holding the raw datasets (default: $MMHAR_DATA, ./data)")
    p.add_argument("--device", type=_device, default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--precision", choices=PRECISIONS, default=None,
                   help="training precision: fp32, bf16 (autocast; losses, mining and scoring stay fp32) or auto "
                        "(bf16 on CUDA and on CPUs with native bf16, else fp32). Default: the suite's (paper: fp32, "
                        "others: auto); part of every cell key")
    p.add_argument("--jobs", type=_positive_int, default=None, metavar="N",
                   help="work units run in parallel (default: on a CPU, its cores / --threads; on CUDA, 1). Two "
                        "1-thread workers trained 1.15-1.65x more clips/s than one 2-thread worker on a 2-core CPU")
    p.add_argument("--backend", choices=("local", "joblib", "dask"), default="local",
                   help="local (in-process, or joblib when --jobs > 1), joblib, or dask")
    p.add_argument("--scheduler", metavar="ADDR", help="dask scheduler address (default: start a local cluster)")
    p.add_argument("--threads", type=_positive_int, default=1, metavar="N",
                   help="torch threads per work unit (default 1). CPU results depend on it, so keep it fixed when "
                        "comparing runs; use --jobs for parallelism")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cells, pretraining, cached, estimate) only")
    p.add_argument("--report-only", action="store_true", help="rebuild runs.csv and the report from the records")
    p.add_argument("--allow-mixed", action="store_true",
                   help="let a table combine records of different code versions, devices, precisions or data "
                        "(default: each table keeps the current code's provenance, else the folder's; the rest is listed)")
    p.add_argument("--download", metavar="NAME", help="download a dataset's raw files into the data root and exit")
    p.add_argument("--export", metavar="RESULTS_DIR[/FILTER]",
                   help="write the pretrained encoders of a results folder (only variants containing FILTER) as "
                        "safetensors + JSON into --to DIR, loadable with benchmark.load_encoder, and exit")
    p.add_argument("--to", type=Path, metavar="DIR", help="where --export writes (required with --export)")
    p.add_argument("--baselines", type=Path, metavar="DIR",
                   help="compare --methods with the stored records of DIR: run only their cells (plus an anchor), "
                        "with DIR's datasets, split, seeds and protocol configs, into --results (DIR is only read)")
    p.add_argument("--anchor", metavar="VARIANT",
                   help="with --baselines: the baseline variant re-run here to measure the shift of your conditions "
                        "(default: DIR's cheapest trained variant; 'none' to skip)")
    p.add_argument("--merge", action="store_true",
                   help="let a run of another suite write into a folder that holds a suite's records (the report "
                        "keeps each suite's tables apart)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first failing cell")
    p.add_argument("--quiet", action="store_true", help="print errors and the final summary only")
    return p


from benchmark.runner.folder_mark import SUITE_MARK, folder_suite  # noqa: E402,F401 (re-exported)


def mark_folder_suite(results_dir: Path, name: str) -> None:
    """Record which suite writes `results_dir`, so a later `--report-only` titles the report alike."""
    from benchmark.runner.folder_mark import mark_folder

    mark_folder(results_dir, name)


def _known_datasets(names: list[str] | None) -> list[str] | None:
    """The named datasets, each checked against the registry (a SuiteError naming an unknown one)."""
    from benchmark.registry import DATASETS
    from benchmark.suites import _known_names

    return list(_known_names("dataset", names, DATASETS.names())) if names else None


def list_plugins(out: Callable[[str], None] = print, datasets: Sequence[str] | None = None) -> None:
    """Print every registered dataset (or the named ones) with its method variants and protocols (one line each
    saying what it measures), then the backbones and suites."""
    from benchmark.contracts import DatasetError
    from benchmark.data import resolve_root
    from benchmark.registry import BACKBONES, DATASETS, METHODS, PROTOCOLS
    from benchmark.runner.planner import downloadable
    from benchmark.suites import expand_method

    out("datasets:")
    root = resolve_root()
    names = list(datasets) if datasets else DATASETS.names()
    for name in names:
        cls = DATASETS.get(name)
        if not cls.needs_root:
            where = "generated on the fly"
        else:
            try:
                where = f"found in {cls().find(root)}"
            except DatasetError:
                get = (f"python run_all.py --download {name}" if downloadable(name)
                       else "not downloadable: see the dataset's page in docs/")
                where = f"not found under {root} ({get}, or --data-root DIR)"
            except Exception as exc:
                where = f"unavailable ({exc})"
        mods = ", ".join(f"{m} ({spec.kind})" for m, spec in cls.modalities.items())
        families = sorted({f for f in (getattr(sp, "family", None) for sp in cls.splits.values()) if f})
        fam = f" (families: {', '.join(families)})" if families else ""
        out(f"  {name:<12} modalities {mods}; splits {', '.join(cls.splits)}{fam}; main metric "
            f"{cls.training.main_metric}; {where}")
        variants = [v for m in METHODS.names() for v in _variants_on(m, cls)]
        out(f"    method variants ({len(variants)}): {', '.join(variants)}")
        heads = tuple(getattr(cls, "headline_protocols", ()) or ())
        if heads:
            out(f"    headline protocols (summarised first on the page): {', '.join(heads)}")
    out("protocols (method kinds evaluated):")
    for name, pcls in PROTOCOLS.items():
        doc = (pcls.__doc__ or "").strip().splitlines()
        out(f"  {name:<16} {', '.join(getattr(pcls, 'kinds', ()))}: {doc[0] if doc else ''}")
    if datasets:
        return
    out("methods (kind: variants):")
    for name, mcls in METHODS.items():
        out(f"  {name:<12} {mcls.kind}: {', '.join(expand_method(name))}")
    out("backbones:")
    for name in BACKBONES.names():
        out(f"  {name}")
    out("suites:")
    for name, s in SUITES.items():
        out(f"  {name:<6} {s.description}")


def _variants_on(method: str, dataset_cls: Any) -> list[str]:
    """The variants of a method on a dataset plugin's declared modalities (none where it cannot run there)."""
    from benchmark.contracts.method import DataInfo
    from benchmark.registry import METHODS
    from benchmark.suites import expand_method

    shapes = {m: (s.channels, dataset_cls.training.length) + ((s.joints,) if s.joints else ())
              for m, s in dataset_cls.modalities.items()}
    groups = tuple(sorted({g for sp in dataset_cls.splits.values() for part in (sp.train, sp.val, sp.test)
                           if isinstance(part, dict) for g in part}))
    info = DataInfo(shapes=shapes, kinds={m: s.kind for m, s in dataset_cls.modalities.items()},
                    num_classes=len(dataset_cls.class_names), training=dataset_cls.training,
                    dataset=dataset_cls.name, groups=groups)
    if METHODS.get(method).applicability(info) is not None:
        return []
    return expand_method(method, info)


def check_path_names(path: Path, flag: str) -> None:
    """A RunError when a part of `path` is longer than its file system allows (Errno 36 later, mid-run)."""
    from benchmark.runner import RunError

    path = Path(path)
    probe = next((p for p in [path, *path.parents] if os.path.isdir(p)), Path("."))
    try:
        name_max = os.pathconf(probe, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    longest = max((part for part in path.parts), key=len, default="")
    if len(longest.encode()) > name_max:
        raise RunError(f"{flag} {str(path)[:60]}...: a folder name of {len(longest)} characters (this file system "
                       f"allows {name_max}); pass a shorter {flag}")


MIN_FREE_MB = 200  # records, checkpoints and figures of a suite need far less; below this a run stops first


def check_writable(results_dir: Path) -> None:
    """A RunError before any training when the results folder cannot be written or its disk is nearly full."""
    import shutil
    import tempfile

    from benchmark.runner import RunError

    folder = Path(results_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as exc:
        raise RunError(f"results folder {folder} is not writable ({exc.strerror or exc}); fix its permissions or "
                       f"pass another --results folder") from None
    free_mb = shutil.disk_usage(folder).free / 2**20
    if free_mb < MIN_FREE_MB:
        raise RunError(f"only {free_mb:.0f} MB free on the disk of {folder} (at least {MIN_FREE_MB} MB needed for "
                       f"records and checkpoints); free some space or pass another --results folder")


def build_report_safely(results_dir: Path, suite: str | None, log: Callable[[str], None],
                        allow_mixed: bool = False) -> list[Path]:
    """Validate every record first, then write runs.csv and the report (benchmark.report.build_report)."""
    from benchmark.report import build_report, collect
    from benchmark.report.entries import ReportError
    from benchmark.store import scan_records, write_runs_csv

    good, bad = scan_records(Path(results_dir))
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ReportError(f"{bad[0]}{more}. Delete the unreadable record(s) or re-run the suite (it recomputes them), "
                          f"then rebuild the report; nothing was rewritten")
    if not good:
        log(f"report not built: no records in {Path(results_dir) / 'records'} yet")
        return []
    rs = collect(Path(results_dir), allow_mixed)  # raises ReportError, naming the file, before any write
    for name, why in rs.dropped:
        log(f"report: left out {name}: {why}")
    paths = [write_runs_csv(results_dir)]
    paths += list(build_report(Path(results_dir), suite, rs=rs) or [])
    return paths


def _log_report(paths: list[Path], results_dir: Path, log: Callable[[str], None]) -> None:
    top = sorted(Path(p).name for p in paths if Path(p).parent == Path(results_dir))
    log(f"report: {len(paths)} files written under {results_dir} ({', '.join(top)})")


class _Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a batch system's stop), taken down the same path as Ctrl-C."""


_STOP_GRACE_S = 10.0  # repeats of a SIGTERM within this time of the first are the same stop
_first_stop: list[float] = []


def _raise_terminated(signum: int, frame: Any) -> None:
    # GNU `timeout` signals its child and then the child's process group: a repeat within the grace time must not
    # cut the clean-up short (it used to end the run in mid clean-up, exit -15, its end line at risk). A later
    # SIGTERM stops the run again, should the first have been swallowed somewhere.
    from benchmark.runner import stop

    now = time.monotonic()
    if _first_stop and now - _first_stop[-1] < _STOP_GRACE_S:
        return
    _first_stop[:] = [now]
    stop.request()
    raise _Terminated()


def _raise_interrupted(signum: int, frame: Any) -> None:
    # Ctrl-C reaches the whole process group; `kill -INT` and a group signal may both come. The first stops the
    # run; a repeat while it ends its workers (still holding the folder's lock) must not cut that short. Should
    # the first KeyboardInterrupt be swallowed somewhere, the runner's next check stops the run (runner.stop).
    from benchmark.runner import stop

    if stop.requested():
        return
    stop.request()
    raise KeyboardInterrupt()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit code (0 ok, 1 some cells failed, 2 usage or data error, 130 Ctrl-C,
    143 SIGTERM). A stop by either signal still logs the run's end line and leaves every finished cell stored."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.command = shlex.join(["python", "run_all.py", *(sys.argv[1:] if argv is None else argv)])
    in_main_thread = threading.current_thread() is threading.main_thread()
    from benchmark.runner import stop as run_stop

    run_stop.arm()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    previous_int = signal.signal(signal.SIGINT, _raise_interrupted) if in_main_thread else None
    try:
        return _main(args, parser)
    except KeyboardInterrupt as stop:
        print("interrupted: finished cells are stored; rerun the same command to resume", file=sys.stderr)
        return 143 if isinstance(stop, _Terminated) else 130
    except OSError as exc:  # the machine's answer (disk full, read-only, name too long): one line, no traceback
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}; finished cells are stored, fix this and rerun the same command",
              file=sys.stderr)
        return EXIT_FAILED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
            signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)
        run_stop.disarm()


def _main(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from benchmark.contracts import DatasetError
    from benchmark.data import set_default_root
    from benchmark.engine import ConfigError, resolve_device
    from benchmark.export import ExportError
    from benchmark.plugins import PluginImportError
    from benchmark.registry import RegistryError
    from benchmark.report.entries import ReportError
    from benchmark.runner import RunError, RunSettings, execute, jobs_that_start, parallel_workers, plan_suite
    from benchmark.suites import SuiteError, get_suite, narrow

    def log(msg: str) -> None:
        if not args.quiet:
            print(msg, file=sys.stderr, flush=True)

    def warn(msg: str) -> None:  # printed even with --quiet: a skipped dataset, a fall-back to another dataset
        print(msg, file=sys.stderr, flush=True)

    set_default_root(args.data_root)
    try:
        if args.plugins:
            from benchmark.plugins import add_plugin_files, load_plugins

            load_plugins()
            add_plugin_files(list(args.plugins))
        if args.list:
            list_plugins(datasets=_known_datasets(_names(args.datasets)))
            return EXIT_OK
        if args.download:
            from benchmark.download import download_dataset

            folder = download_dataset(args.download, args.data_root)
            print(f"{args.download} is ready in {folder}")
            return EXIT_OK
        if args.export:
            from benchmark.export import export_encoders

            if args.to is None:
                parser.error("--export needs --to DIR (where to write the encoders)")
            check_path_names(args.to, "--to")
            src, filt = Path(args.export), None
            if not (src / "records").is_dir() and (src.parent / "records").is_dir():
                src, filt = src.parent, src.name
            files = export_encoders(src, args.to, filt, args.data_root, log=log)
            print(f"{len([f for f in files if f.suffix == '.safetensors'])} encoder(s) exported to {args.to}")
            return EXIT_OK
        try:
            seeds = _seeds(args.seeds)
        except argparse.ArgumentTypeError as exc:
            parser.error(str(exc))
        default_suite = "smoke"
        if args.baselines is not None and not args.suite:  # the baseline folder's own suite (its schedules)
            default_suite = folder_suite(args.baselines) or "full"
        suite = narrow(get_suite(args.suite or default_suite), datasets=_names(args.datasets), methods=_names(args.methods),
                       protocols=_names(args.protocols), seeds=seeds, epochs_scale=args.epochs_scale,
                       split=args.split)
        results_dir = args.results or Path("results") / suite.name
        check_path_names(results_dir, "--results")
        if args.report_only:
            if not (results_dir / "records").is_dir():
                raise RunError(f"no records in {results_dir / 'records'}; run the suite first (or pass --results DIR)")
            title = args.suite or folder_suite(results_dir)
            _log_report(build_report_safely(results_dir, title, log, args.allow_mixed), results_dir, log)
            return EXIT_OK
        device = str(resolve_device(args.device))  # fails early when CUDA is asked for but absent
        if args.jobs is None:
            args.jobs = 1 if device.startswith("cuda") else parallel_workers(device, os.cpu_count() or 1, args.threads)
        settings = RunSettings(device=args.device, jobs=args.jobs, backend=args.backend, scheduler=args.scheduler,
                               threads=args.threads, quiet=args.quiet, fail_fast=args.fail_fast,
                               data_root=args.data_root, precision=args.precision, command=args.command,
                               merge=args.merge)
        if args.baselines is not None:
            from benchmark.baselines import BASELINES_MARK, copy_subsets
            from benchmark.runner.baseline_plan import plan_with_baselines

            if args.results is None:
                parser.error("--baselines needs --results DIR: the folder of your run (the baseline folder is only "
                             "read)")
            plan, bmark, bf = plan_with_baselines(
                suite, args.baselines, results_dir, methods=_names(args.methods) or [], anchor=args.anchor,
                protocols=_names(args.protocols), seeds=seeds, data_root=args.data_root, log=log, device=args.device,
                precision=args.precision)
            settings.marks[BASELINES_MARK] = bmark
            log(f"against the baselines of {args.baselines}: {len(plan.cells)} cells of your method(s)"
                + (f" and the anchor {bmark['anchor']} (seeds {', '.join(map(str, bmark['anchor_seeds']))})"
                   if bmark["anchor"] else "") + "; the baseline folder is only read")
        else:
            if args.anchor:
                parser.error("--anchor only applies with --baselines DIR")
            plan = plan_suite(suite, results_dir, data_root=args.data_root, log=log, device=args.device,
                              precision=args.precision, strict_methods=_names(args.methods) or (),
                              warn=warn)
        if args.dry_run:
            from benchmark.rates import measure_step_times

            step_times = measure_step_times(plan, device, args.threads, args.data_root, log)
            started = jobs_that_start(args.jobs, len(plan.needed_units()), args.backend, args.scheduler)
            if started < args.jobs:
                print(f"note: {args.jobs} jobs capped at {started}: only {len(plan.needed_units())} work unit(s) to run",
                      file=sys.stderr)
            print(plan.summary(device=device, workers=parallel_workers(device, started, args.threads),
                               step_times=step_times, started=started if started > 1 else None))
            return EXIT_OK
        check_writable(results_dir)
        if args.baselines is not None and copy_subsets(bf, results_dir):
            log(f"copied the saved label subsets of {args.baselines} into {results_dir / 'subsets'}")
        summary = execute(plan, settings, log=log)
        _log_report(build_report_safely(results_dir, suite.name, log, args.allow_mixed), results_dir, log)
        if args.quiet:
            for label, err in summary.failed:  # errors are printed even when quiet: one line per failed cell
                last = [ln for ln in err.strip().splitlines() if ln.strip()]
                print(f"failed: {label}: {last[-1].strip() if last else 'unknown error'}", file=sys.stderr)
            print(f"{summary.completed} cells computed, {len(summary.failed)} failed, {summary.done_before} already "
                  f"done; results in {results_dir}")
        return EXIT_OK if summary.ok else EXIT_FAILED
    except (SuiteError, RegistryError, ConfigError, DatasetError, RunError, PluginImportError, ReportError,
            ExportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
