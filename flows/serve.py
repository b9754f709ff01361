"""``arhiva serve``: deployments with cron schedules, read from a TOML file.

Example (``schedules.toml``)::

    [[crawl]]
    name = "pastvu-moldova-nightly"
    cron = "0 2 * * *"
    spider = "pastvu"
    params = { region = "moldova", collection = "moldova" }
    colorize_after = { years = "1850-1990" }   # colorize what the crawl brought in

    [[train]]
    name = "train-weekly"
    cron = "0 4 * * 0"
    collection = "moldova"

    [[colorize]]
    name = "colorize-nightly"
    cron = "30 3 * * *"
    collection = "moldova"
    years = "1850-1990"

Schedules run only on a real Prefect server (``prefect server start`` and
``PREFECT_API_URL``); the temporary local server registers them but never
fires them. ``serve`` runs the scheduled flow runs in its own process, on its machine;
``deploy_schedules`` registers them on a work pool instead, where the pool's workers run them
(``arhiva serve --pool NAME``).
"""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

KINDS = ("crawl", "train", "colorize")
TIMEZONE = "Europe/Chisinau"


class ScheduleError(ValueError):
    pass


def load_schedule(path: Path) -> list[dict[str, Any]]:
    """Validate the file; return one entry per deployment with kind, name, cron, parameters."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScheduleError(f"schedule file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(f"{path} is not valid TOML: {exc}") from None
    unknown = set(data) - set(KINDS) - {"timezone"}
    if unknown:
        raise ScheduleError(f"{path}: unknown section(s) {sorted(unknown)}; expected {list(KINDS)}")
    tz = data.get("timezone", TIMEZONE)
    entries = []
    for kind in KINDS:
        for i, raw in enumerate(data.get(kind, [])):
            entry = dict(raw)
            where = f"{path}: [[{kind}]] #{i + 1}"
            cron = entry.pop("cron", None)
            if not cron or len(str(cron).split()) != 5:
                raise ScheduleError(f"{where}: cron must be a 5-field cron expression, got {cron!r}")
            name = entry.pop("name", f"{kind}-{i + 1}")
            if kind == "crawl":
                if "spider" not in entry:
                    raise ScheduleError(f"{where}: spider is required (pastvu or archive)")
                params = {"spider": entry.pop("spider"), "params": entry.pop("params", {}),
                          "settings": entry.pop("settings", None), "colorize_after": entry.pop("colorize_after", None)}
            else:
                if "collection" not in entry:
                    raise ScheduleError(f"{where}: collection is required")
                params = entry
                entry = {}
            if kind == "crawl" and entry:
                raise ScheduleError(f"{where}: unknown key(s) {sorted(entry)}")
            entries.append({"kind": kind, "name": name, "cron": str(cron), "timezone": tz, "parameters": params})
    if not entries:
        raise ScheduleError(f"{path}: no [[crawl]], [[train]] or [[colorize]] entries")
    return entries


def _flows():
    from flows.prefect_env import ensure_home

    ensure_home()
    from flows.colorize import colorize_flow
    from flows.crawl import crawl_flow
    from flows.train import train_flow

    return {"crawl": crawl_flow, "train": train_flow, "colorize": colorize_flow}


def _check_keys(where: str, given: dict[str, Any], fn, skip: tuple[str, ...] = ()) -> None:
    import inspect

    allowed = [p for p in inspect.signature(fn).parameters if p not in skip]
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise ScheduleError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def check_entries(entries: list[dict[str, Any]], where_of: dict[str, str] | None = None) -> None:
    """Every entry against the flow it starts: unknown or misspelled keys (with the allowed ones),
    values the flow's signature refuses, a crawl's spider and parameters, ``colorize_after``."""
    from crawlers.runner import CrawlError, checked_params

    flows = _flows()
    for e in entries:
        where = f"{e['kind']} {e['name']!r}"
        params = dict(e["parameters"])
        if e["kind"] == "crawl":
            try:
                checked_params(params["spider"], params.get("params") or {})
            except CrawlError as exc:
                raise ScheduleError(f"{where}: {exc}") from None
            if params.get("colorize_after") is not None:
                if not isinstance(params["colorize_after"], dict):
                    raise ScheduleError(f"{where}: colorize_after must be a table, e.g. {{ years = \"1850-1990\" }}")
                _check_keys(f"{where}: colorize_after", params["colorize_after"], flows["colorize"].fn,
                            skip=("collection",))
        else:
            _check_keys(where, params, flows[e["kind"]].fn)
        try:
            flows[e["kind"]].validate_parameters(params)
        except Exception as exc:  # Prefect's ParameterTypeError / SignatureMismatchError
            raise ScheduleError(f"{where}: {' '.join(str(exc).split())}") from None
        try:  # the values the flow refuses before its run starts (each scheduled run would fail)
            _check_values(e["kind"], params)
        except ValueError as exc:
            raise ScheduleError(f"{where}: {exc}") from None


def _check_values(kind: str, params: dict[str, Any]) -> None:
    import inspect

    from colorization.config import device_problem
    from flows.colorize import SIZE_BOUNDS, check_sizes
    from flows.train import check_train_settings

    if kind == "crawl" and isinstance(params.get("colorize_after"), dict):
        kind, params = "colorize", params["colorize_after"]
    if kind == "colorize":
        check_sizes(**{k: params[k] for k in SIZE_BOUNDS if k in params})
        if device_problem(params.get("device")):
            raise ValueError(device_problem(params.get("device")))
    elif kind == "train":
        defaults = {k: p.default for k, p in inspect.signature(_flows()["train"].fn).parameters.items()}
        names = inspect.signature(check_train_settings).parameters
        check_train_settings(**{k: params.get(k, defaults[k]) for k in names})


def build_deployments(entries: list[dict[str, Any]], **options: Any):
    from prefect.schedules import Cron

    flows = _flows()
    return [flows[e["kind"]].to_deployment(name=e["name"], schedule=Cron(e["cron"], timezone=e["timezone"]),
                                           parameters=e["parameters"], tags=["arhiva", e["kind"]], **options)
            for e in entries]


def deploy_schedules(entries: list[dict[str, Any]], pool: str) -> dict[str, str]:
    """Register the scheduled deployments on work pool ``pool`` (made if missing), their code the
    installed package as ``arhiva deploy`` registers it: the server fires the schedules and the
    pool's workers run them. Returns ``flow/deployment`` name → id."""
    from prefect.deployments.runner import EntrypointType, deploy

    from flows.deploy import check_pool, ensure_pool, shared_api

    check_pool(pool)
    shared_api()
    ensure_pool(pool)
    deployments = build_deployments(entries, entrypoint_type=EntrypointType.MODULE_PATH)
    ids = deploy(*deployments, work_pool_name=pool, build=False, push=False, print_next_steps_message=False,
                 ignore_warnings=True)
    return {f"{e['kind']}/{e['name']}": str(i) for e, i in zip(entries, ids)}


def serve(entries: list[dict[str, Any]]) -> None:
    from prefect import serve as prefect_serve

    prefect_serve(*build_deployments(entries))
