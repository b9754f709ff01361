"""Commands for work spread over machines: ``arhiva deploy`` and ``arhiva worker`` (see ``flows.deploy``)."""
from __future__ import annotations

import typer

from flows.cli.ui import Table, console, err, escape

app = typer.Typer()

POOL_HELP = "Prefect work pool (process workers)."


@app.command("deploy")
def deploy(pool: str = typer.Option("arhiva", "--pool", help=POOL_HELP)) -> None:
    """Register the crawl, train and colorize flows on a work pool of the Prefect server in
    PREFECT_API_URL (the pool is made if it does not exist). Run once, from any machine."""
    from flows.deploy import deploy_flows

    made = deploy_flows(pool)
    t = Table("deployment", "id", title=f"deployments on work pool {pool!r}", title_justify="left")
    for name, ident in made.items():
        t.add_row(name, ident)
    console.print(t)
    import shlex  # the hint is pasted into a shell: a pool named "pool ș" must stay one word

    err.print(f"start a worker on each machine: [bold]arhiva worker --pool {escape(shlex.quote(pool))}[/bold]",
              highlight=False)


@app.command("worker")
def worker(pool: str = typer.Option("arhiva", "--pool", help=POOL_HELP),
           name: str = typer.Option(None, "--name", help="Worker name (default: Prefect's)."),
           limit: int = typer.Option(None, "--limit", "-n", min=1, help="Flow runs at once on this machine.")) -> None:
    """Run flow runs of the pool on this machine until stopped (Ctrl-C or SIGTERM).

    Its environment is the machine's: its own ARHIVA_HOME (a cache), and the shared
    ARHIVA_DATABASE_URL, ARHIVA_BLOBS (s3://…) and PREFECT_API_URL."""
    from flows.deploy import start_worker

    raise typer.Exit(start_worker(pool, name=name, limit=limit))
