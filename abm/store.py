"""Results on disk: one part per finished task, combined and renamed into place at the end.

A run writes into `.<name>.partial/` beside the target. Each finished task adds
`parts/<key>.results.parquet`, `parts/<key>.finance.parquet` and, last, `parts/<key>.json` (a
paired risk-source run stores only its JSON record); a
task counts as stored only once its JSON exists, so a kill at any moment leaves a resumable
directory. Combining reads one part at a time, so memory does not grow with the sweep size.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from abm.errors import ConfigError

RUN_FILE = "run.json"
RESULTS_SCHEMA = pa.schema([("experiment", pa.string()), ("arrangement", pa.string()),
                            ("point", pa.int64()), ("replicate", pa.int64()), ("seed", pa.int64()),
                            ("step", pa.int64()), ("metric", pa.string()), ("value", pa.float64())])
#: a study across economies: the same with `economy` after `experiment`
RESULTS_SCHEMA_ECONOMY = RESULTS_SCHEMA.insert(1, pa.field("economy", pa.string()))


def results_schema(columns) -> pa.Schema:
    return RESULTS_SCHEMA_ECONOMY if "economy" in columns else RESULTS_SCHEMA


def partial_dir(target: Path) -> Path:
    return target.parent / f".{target.name}.partial"


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, path)


LOCK_FILE = "LOCK"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def live_lock(partial: Path) -> dict | None:
    """The lock of a run still writing into `partial` (PID and host), or None if there is none or its
    process on this host has gone (a stale lock)."""
    f = partial / LOCK_FILE
    try:
        info = json.loads(f.read_text())
    except (OSError, ValueError):
        return None
    if info.get("host") == socket.gethostname() and not _alive(int(info.get("pid", -1))):
        return None
    return info


class RunStore:
    """The temporary directory of one run (fresh or resumed)."""

    def __init__(self, target: Path, partial: Path, info: dict):
        self.target, self.partial, self.info = target, partial, info
        self.parts = partial / "parts"

    @property
    def started(self) -> str | None:
        return self.info.get("started")

    def lock(self) -> None:
        """Claim the run for this process; refuse if another live run holds it."""
        held = live_lock(self.partial)
        if held is not None and not (held.get("pid") == os.getpid() and held.get("host") == socket.gethostname()):
            raise ConfigError(f"another run is writing this output (PID {held.get('pid')} on {held.get('host')}, "
                              f"since {held.get('since')})", field="--out", value=str(self.target),
                              allowed="another --out, or wait for that run to finish")
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _atomic_write(self.partial / LOCK_FILE, json.dumps(info).encode())

    def unlock(self) -> None:
        try:
            (self.partial / LOCK_FILE).unlink()
        except FileNotFoundError:
            pass

    @classmethod
    def create(cls, target: Path, config: dict, fingerprint: str, *, source: str,
               source_sha256: str | None, started: str, overwrite: bool = False,
               inputs: dict | None = None) -> "RunStore":
        target = Path(target).resolve()
        if target.exists() and not (target / "manifest.json").is_file() and (
                not target.is_dir() or any(target.iterdir())):
            raise ConfigError("output exists and is not an abm results directory", field="--out",
                              value=str(target), allowed="a new path, an empty folder or earlier results")
        partial = partial_dir(target)
        if partial.exists():
            held = live_lock(partial)
            if held is not None:
                raise ConfigError(f"another run is writing this output (PID {held.get('pid')} on "
                                  f"{held.get('host')}, since {held.get('since')})", field="--out",
                                  value=str(target), allowed="another --out, or wait for that run to finish")
            raise ConfigError("an interrupted run is stored for this output", field="--out",
                              value=str(target),
                              allowed=f"'abm run --resume {target}' or delete {partial}")
        if (target / "manifest.json").is_file() and not overwrite:
            raise ConfigError("finished results are already stored here", field="--out", value=str(target),
                              allowed="another --out, or --overwrite to replace them")
        info = {"config": config, "config_sha256": fingerprint, "source": source,
                "source_sha256": source_sha256, "started": started, "target": str(target),
                "inputs_sha256": inputs or {}}
        (partial / "parts").mkdir(parents=True)
        _atomic_write(partial / RUN_FILE, json.dumps(info, indent=1).encode())
        store = cls(target, partial, info)
        store.lock()
        return store

    def stored_config(self) -> dict:
        return self.info["config"]

    def check_fingerprint(self, fingerprint: str) -> None:
        if fingerprint != self.info.get("config_sha256"):
            raise ConfigError("experiment differs from the interrupted run's configuration",
                              field="--resume", value=str(self.target),
                              allowed="the same experiment and options as the interrupted run")

    def check_inputs(self, inputs: dict) -> None:
        """Economy and arrangement files must be as they were when the run started."""
        stored = self.info.get("inputs_sha256")
        if stored is None:   # a run stored before inputs were recorded
            return
        for f in sorted(set(stored) | set(inputs)):
            if stored.get(f) != inputs.get(f):
                what = "is new" if f not in stored else "is gone" if f not in inputs or inputs[f] is None \
                    else "has changed"
                raise ConfigError(f"input file {f} {what} since the interrupted run started",
                                  field="--resume", value=str(self.target),
                                  allowed="the files as they were (or start afresh with another --out)")

    # parts -----------------------------------------------------------------------------
    def stored_keys(self) -> set[str]:
        return {p.name[:-5] for p in self.parts.glob("*.json")}

    def write_part(self, result: dict) -> None:
        """A task's parquet parts (none for a paired risk-source run), then its JSON record."""
        key = result["key"]
        if result.get("results") is None:
            _atomic_write(self.parts / f"{key}.json", json.dumps(result["meta"]).encode())
            return
        _write_parquet(pa.Table.from_pandas(result["results"], schema=results_schema(result["results"].columns),
                                             preserve_index=False),
                       self.parts / f"{key}.results.parquet")
        _write_parquet(pa.Table.from_pandas(result["finance"], preserve_index=False),
                       self.parts / f"{key}.finance.parquet")
        _atomic_write(self.parts / f"{key}.json", json.dumps(result["meta"]).encode())

    def read_meta(self, key: str) -> dict:
        return json.loads((self.parts / f"{key}.json").read_text())

    def combine(self, keys: list[str]) -> None:
        """Concatenate parts in the given (canonical) order, one part in memory at a time."""
        for kind in ("results", "finance"):
            files = [self.parts / f"{k}.{kind}.parquet" for k in keys]
            schemas = [pq.read_schema(f) for f in files]
            non_empty = [s for s, f in zip(schemas, files) if pq.ParquetFile(f).metadata.num_rows]
            schema = results_schema(schemas[0].names) if kind == "results" else pa.unify_schemas(
                [s.remove_metadata() for s in (non_empty or schemas)], promote_options="permissive")
            with pq.ParquetWriter(self.partial / f"{kind}.parquet", schema) as writer:
                for f in files:
                    table = pq.read_table(f)
                    if table.num_rows:
                        writer.write_table(_conform(table, schema))

    # end states --------------------------------------------------------------------------
    def discard(self) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def finalize(self, manifest: dict) -> Path:
        """Write the manifest, drop the parts and rename the directory into place."""
        _atomic_write(self.partial / "manifest.json", json.dumps(manifest, indent=2).encode())
        shutil.rmtree(self.parts)
        (self.partial / RUN_FILE).unlink()
        self.unlock()
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            os.replace(self.target, old)
        os.replace(self.partial, self.target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    cols = [table.column(f.name).cast(f.type) if f.name in table.column_names
            else pa.nulls(table.num_rows, f.type) for f in schema]
    return pa.Table.from_arrays(cols, schema=schema)


def locate_resume(path: str | Path) -> RunStore:
    """Find an interrupted run from its --out directory (or the .partial folder itself)."""
    path = Path(path).resolve()
    if (path / RUN_FILE).is_file():
        partial = path
    else:
        partial = partial_dir(path)
    info_file = partial / RUN_FILE
    if not info_file.is_file():
        raise ConfigError("no interrupted run found", field="--resume", value=str(path),
                          allowed="the --out directory of an interrupted 'abm run'")
    info = json.loads(info_file.read_text())
    run = RunStore(Path(info["target"]), partial, info)
    run.lock()
    # a run stopped while finishing may have removed some or all of its parts: they run again
    run.parts.mkdir(exist_ok=True)
    return run


def write_networks(folder: Path, graphs: dict) -> None:
    """networks/<arrangement>.graphml, via the model's GraphML-safe writer."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        from abm.contracts import write_graphml
    except ImportError:
        write_graphml = _plain_graphml
    for arrangement, graph in graphs.items():   # "<economy>/<arrangement>" in a study across economies
        (folder / f"{arrangement}.graphml").parent.mkdir(parents=True, exist_ok=True)
        write_graphml(graph, folder / f"{arrangement}.graphml")


def _plain_graphml(graph, path) -> None:
    import networkx as nx
    safe = graph.copy()
    for _, data in safe.nodes(data=True):
        data.update({k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in data.items()})
    for *_, data in safe.edges(data=True, keys=True) if safe.is_multigraph() else safe.edges(data=True):
        data.update({k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in data.items()})
    nx.write_graphml(safe, path)
