"""Real RRDtool as the oracle: Debian's `rrdtool` CLI and `python3-rrdtool`
binding (loaded from the system dist-packages into the venv), and ways to read
everything it stored. Missing oracle: skip on a developer machine, fail when CI=true."""

from __future__ import annotations

import importlib.util
import math
import shutil
import subprocess
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from needs import unavailable

BINDING_GLOBS = (
    "/usr/lib/python3/dist-packages/rrdtool.cpython-311-*.so",
    "/usr/lib/python3/dist-packages/rrdtool*.so",
)
DEBIAN_PACKAGES = "rrdtool python3-rrdtool"


def missing(what: str) -> None:
    message = f"{what} not found: apt-get install {DEBIAN_PACKAGES}"
    unavailable(message)


def load_binding() -> ModuleType | None:
    import glob

    for pattern in BINDING_GLOBS:
        for candidate in sorted(glob.glob(pattern)):
            spec = importlib.util.spec_from_file_location("rrdtool", candidate)
            if spec is None or spec.loader is None:
                continue
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            return module
    return None


@dataclass
class Oracle:
    """Real RRDtool and ways to read everything it stored."""

    binding: ModuleType
    cli: str

    def rows(self, path: str) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every stored row of every RRA, oldest first, bit-exact: read from the
        file (values follow the header, RRA after RRA, row by row)."""
        info = self.cli_info(path)
        step = int(info["step"])
        last_up = int(info["last_update"])
        ds_count = len([k for k in info if k.endswith(".index") and k.startswith("ds[")])
        data = np.fromfile(path, dtype=np.float64, offset=int(info["header_size"]))
        out = []
        position = 0
        index = 0
        while f"rra[{index}].rows" in info:
            rows = int(info[f"rra[{index}].rows"])
            steps = int(info[f"rra[{index}].pdp_per_row"])
            cur = int(info[f"rra[{index}].cur_row"])
            block = data[position : position + rows * ds_count].reshape(rows, ds_count)
            position += rows * ds_count
            order = (cur + 1 + np.arange(rows)) % rows
            rra_step = step * steps
            end = last_up - last_up % rra_step
            stamps = end - rra_step * np.arange(rows - 1, -1, -1)
            out.append((stamps, block[order]))
            index += 1
        return out

    def cli_info(self, path: str) -> dict[str, Any]:
        text = subprocess.run(
            [self.cli, "info", path], check=True, capture_output=True, text=True
        ).stdout
        info: dict[str, Any] = {}
        for line in text.splitlines():
            key, _, raw = line.partition(" = ")
            raw = raw.strip()
            if raw.startswith('"'):
                info[key] = raw.strip('"')
            elif raw in ("NaN", "nan", "-nan"):
                info[key] = math.nan
            else:
                try:
                    info[key] = int(raw)
                except ValueError:
                    info[key] = float(raw)
        return info


def require_oracle() -> Oracle:
    cli = shutil.which("rrdtool")
    if cli is None:
        missing("the rrdtool command")
        raise AssertionError  # unreachable
    binding = load_binding()
    if binding is None:
        missing("the rrdtool Python binding")
        raise AssertionError  # unreachable
    return Oracle(binding, cli)
