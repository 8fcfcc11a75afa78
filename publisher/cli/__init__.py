"""The ``publisher`` command line: a root group whose commands are imported only when used.

Every command module imports click and nothing heavy at its top level, so ``publisher --help`` stays fast.
A ``PublisherError`` becomes one line, ``Error: ...``, on stderr with exit code 2, never a traceback.
"""

from __future__ import annotations

import errno
import importlib
import sys
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from publisher.site import Site

# name -> "module:attribute"; each issue adds its commands here.
COMMANDS: dict[str, str] = {
    # core (issue 2)
    "publish": "publisher.cli.core:publish",
    "preview": "publisher.cli.core:preview",
    "status": "publisher.cli.core:status",
    "import": "publisher.cli.core:import_command",
    "config": "publisher.cli.core:config",
    # translation (issue 3)
    "models": "publisher.cli.translate:models",
    "translate": "publisher.cli.translate:translate",
    "review": "publisher.cli.translate:review",
    # email (issue 4)
    "subscribers": "publisher.cli.email:subscribers",
    "bulletin": "publisher.cli.email:bulletin",
    # feeds (issue 5)
    "feeds": "publisher.cli.feeds:feeds",
    # web (issue 7)
    "serve": "publisher.cli.web:serve",
    # scheduling (issue 12)
    "schedule": "publisher.cli.schedule:schedule",
    "worker": "publisher.cli.schedule:worker",
    # deliverability (issue 13)
    "bounces": "publisher.cli.bounces:bounces",
    # the shared database (issue 14)
    "db": "publisher.cli.db:db",
}

EXIT_USER_ERROR = 2
# What the optional "translate" extra installs; a command that needs it says how to install it.
TRANSLATION_MODULES = frozenset({"argostranslate", "ctranslate2", "sentencepiece", "kiwipiepy", "pysbd", "stanza"})


class UserError(click.ClickException):
    """A ``PublisherError`` shown as one line with exit code 2."""

    exit_code = EXIT_USER_ERROR


class OutputClosed(Exception):
    """Whoever read our standard output has stopped (``| head -1``); not an OSError, so click leaves it to main()."""


class InternalError(click.ClickException):
    """A bug, shown as one line with exit code 1; ``PUBLISHER_DEBUG=1`` shows the traceback."""

    exit_code = 1


class PublisherGroup(click.Group):
    """Loads command modules lazily and turns publisher errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("publisher"):
                return None  # a command whose module is not part of this build
            raise
        command: click.Command = getattr(module, attribute)
        self.commands[cmd_name] = command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from publisher.errors import PublisherError

        try:
            return super().invoke(ctx)
        except PublisherError as exc:
            raise UserError(_one_line(str(exc))) from None
        except PermissionError as exc:
            raise UserError(f"{exc.filename}: permission denied") from None
        except IsADirectoryError as exc:
            raise UserError(f"{exc.filename}: is a folder") from None
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            raise OutputClosed() from None
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] in TRANSLATION_MODULES:
                from publisher.translate.packages import extra_missing

                raise UserError(extra_missing(exc.name or "")) from None
            raise _internal(exc) from None
        except OSError as exc:
            if exc.errno not in _DISK_ERRNOS:
                raise _internal(exc) from None
            raise UserError(_disk_error(exc)) from None
        except Exception as exc:
            raise _internal(exc) from None


# Errors of the disk rather than of the program: a full disk or quota, a read-only file system, an I/O error.
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EFBIG})


def _disk_error(exc: OSError) -> str:
    """``/site/public/en/feed.json: No space left on device``: the file and the cause, on one line."""
    cause = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
    return _one_line(f"{exc.filename}: {cause}" if exc.filename else f"cannot write: {cause}")


def _internal(exc: Exception) -> Exception:
    """A bug: one line, unless PUBLISHER_DEBUG asks for the traceback (then the original exception)."""
    import os

    from publisher.settings import parse_bool

    try:
        debug = parse_bool(os.environ.get("PUBLISHER_DEBUG", ""))
    except ValueError:
        debug = True
    if debug:
        return exc
    return InternalError(
        f"internal error: {type(exc).__name__}: {_one_line(str(exc))} (PUBLISHER_DEBUG=1 shows the traceback)"
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


@click.group(cls=PublisherGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--site", "site_dir", type=click.Path(file_okay=False, path_type=str), envvar="PUBLISHER_SITE_DIR",
              help="Site folder (content/, public/, outbox/, .publisher/). Default: $PUBLISHER_SITE_DIR or the "
                   "working directory.")
@click.version_option(package_name="publisher")
@click.pass_context
def cli(ctx: click.Context, site_dir: str | None) -> None:
    """Write an article once in English or Korean; translate it offline and publish it as email bulletins,
    RSS/Atom/JSON feeds and social posts, each reader in their own language.

    Without settings every channel writes locally (outbox/ and public/), so nothing leaves the machine
    until you configure it: see `publisher config check`.
    """
    ctx.ensure_object(dict)
    ctx.obj["site_dir"] = site_dir


def get_site(ctx: click.Context) -> Site:
    """The site chosen by ``--site`` / ``PUBLISHER_SITE_DIR`` / the working directory, opened once per run."""
    from publisher.site import Site

    root = ctx.find_root()
    root.ensure_object(dict)
    if "site" not in root.obj:
        root.obj["site"] = Site.discover(root.obj.get("site_dir"))
    site: Site = root.obj["site"]
    return site


def echo_json_lines(records: Iterable[Mapping[str, Any]]) -> None:
    """Machine output, the one form every ``--json`` prints: JSON Lines, one object per line, UTF-8 as written,
    timestamps as ``publisher.timefmt.iso`` writes them. It streams, and ``| head -1`` reads one whole record."""
    import json
    from datetime import datetime, timezone

    from publisher.timefmt import iso

    def encode(value: object) -> object:
        if isinstance(value, datetime):
            # the storage layer keeps UTC; a naive value read back from it is UTC too
            return iso(value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc))
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    for record in records:
        click.echo(json.dumps(record, ensure_ascii=False, default=encode))


def site_language(ctx: click.Context, param: click.Parameter,
                  value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
    """Option callback: each ``--lang``/``--to`` value is a language of the site (PUBLISHER_LANGUAGES);
    anything else is one line, exit 2. The root group has chosen the site before options are read."""
    if value is None or value == ():
        return value
    languages = get_site(ctx).languages
    for given in (value,) if isinstance(value, str) else value:
        if given not in languages:
            option = param.opts[0] if param.opts else "language"
            raise UserError(f"{option}: {given!r} is not a language of this site; expected one of "
                            f"{', '.join(languages)} (PUBLISHER_LANGUAGES)")
    return value


def console(stderr: bool = False) -> Any:
    """A rich console that prints text as given: slugs, names, paths and remote errors may hold "[...]", which
    rich markup would swallow or (a stray "[/]") fail on. Style with ``style=`` or ``rich.text.Text`` instead."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False)


# What a shell reports for a program that SIGPIPE ended (128 + 13), as `yes | head -1` does.
EXIT_OUTPUT_CLOSED = 141


def main() -> None:
    """The console script: the command line, and a quiet end when the reader of the output goes away."""
    try:
        try:
            cli(prog_name="publisher")
        finally:
            # Output that fits the buffer meets the closed pipe here, not at interpreter exit, where Python
            # would print "Exception ignored ... BrokenPipeError".
            sys.stdout.flush()
    except (BrokenPipeError, OutputClosed):
        _discard_stdout()
        sys.exit(EXIT_OUTPUT_CLOSED)
    except OSError as exc:   # output on a full disk, met outside a command (--version) or at the last flush
        if exc.errno not in _DISK_ERRNOS:
            raise
        _discard_stdout()
        click.echo(f"Error: {_disk_error(exc)}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:  # pragma: no cover - click handles most of these itself
        click.echo("Aborted.", err=True)
        sys.exit(130)


def _discard_stdout() -> None:
    """Point standard output at /dev/null, so the flush at exit has somewhere to go (the Python docs' recipe)."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):   # no file descriptor (an embedding host): nothing left to flush into
        pass
