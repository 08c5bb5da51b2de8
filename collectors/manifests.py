"""Declared manifests: the Kubernetes objects a folder, a file or a Git repository at a
ref says should run, read as ``kubectl apply -f`` reads plain YAML and JSON (Helm charts
and Kustomize overlays are rendered before they come here).

A source is a folder (walked recursively, ``.yaml``, ``.yml`` and ``.json`` files in
path order; hidden folders and files such as ``.git`` or ``.gitlab-ci.yml`` are passed
over), a single file, or ``URL_OR_PATH@REF`` with an optional ``:path/in/repo``
(``https://host/org/repo.git@main``, ``git@github.com:org/repo.git@v1.2:deploy``,
``/srv/repo@3f2a9c1``): the ``git`` command clones it (all of its history, so that any
commit can be named) into a temporary folder and reads the tree of REF (a branch, a tag
or a commit, abbreviated or not).

A YAML file may hold several documents (``---``); empty ones are passed over and the
items of a ``List`` (``kind: List``, ``DeploymentList``, ...) are objects of their own.
YAML timestamps stay strings, as Kubernetes reads them.

Secrets are passed over: a declared ``kind: Secret`` is dropped as soon as it is parsed,
so its values never get into KubeOpera (the collector does not read live Secrets' data
either).
"""

import json
import os
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import yaml

from kubeopera.collectors.yaml_size import expanded_size

SUFFIXES = (".yaml", ".yml", ".json")

_SCP_LIKE = re.compile(r"[^@/:]+@[^@/:]+:")
"""Git's scp-like address of a repository over ssh: ``git@github.com:org/repo.git``."""


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """YAML's safe loader (libyaml's when there is one) that keeps timestamps strings."""


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_str)


_MOST_NODES = 1_000_000
"""The values a manifest file may hold, its YAML aliases expanded (an alias bomb is a
few lines)."""
_DEEPEST = 256
"""How deep a manifest file may nest (the C parser's stack ends somewhere past it)."""


class ManifestError(ValueError):
    """A manifest that cannot be read or is not a Kubernetes object. The message is one
    line and names the file (with the line, where YAML gives it) or the Git URL and ref."""


@dataclass(frozen=True)
class Manifest:
    source: str
    """Where the object is declared: the file's path relative to the folder or the
    repository's tree (a single file: its name), with ``#N`` for the Nth document of a
    file of several and ``/items/I`` for the item at index I of a List
    (``apps/web.yaml``, ``apps/all.yaml#2``, ``apps/list.yaml#/items/0``)."""
    document: dict[str, Any]
    """The object as declared (JSON types)."""


def load(source: str) -> list[Manifest]:
    """The objects declared at ``source`` (a folder, a file or ``URL_OR_PATH@REF[:path]``,
    see above), in path order and in order within a file; raises ManifestError."""
    path = Path(source)
    if path.exists():
        return _load_path(path, str(path))
    repository, ref, subpath = _git_source(source)
    if not ref:
        raise ManifestError(f"{source}: no such file or folder, nor URL_OR_PATH@REF")
    with tempfile.TemporaryDirectory(prefix="kubeopera-manifests-") as folder:
        tree = _checkout(repository, ref, Path(folder))
        at = tree.joinpath(*subpath.split("/")) if subpath else tree
        if not at.exists() or not at.resolve().is_relative_to(tree.resolve()):
            raise ManifestError(f"{repository}@{ref}: no path {subpath!r} in the repository")
        return _load_path(at, f"{repository}@{ref}:{subpath}")


def _git_source(source: str) -> tuple[str, str, str]:
    """``URL_OR_PATH@REF[:path]`` as (repository, ref, path); the ref is empty when what
    comes before the last ``@`` is no repository (``git@github.com:org/repo.git``)."""
    repository, _, rest = source.rpartition("@")
    ref, _, subpath = rest.partition(":")  # git allows no ':' in a ref
    address = repository.partition("://")[2]
    url = bool(address) and "/" in address  # a repository's URL has a path
    if repository and (url or _SCP_LIKE.match(repository) or Path(repository).is_dir()):
        return repository, ref, subpath.strip("/")
    return source, "", ""


def _checkout(repository: str, ref: str, folder: Path) -> Path:
    """The tree of ``ref`` in ``repository``, written into ``folder``."""
    bare = folder / "repository.git"
    _git(["clone", "--quiet", "--bare", "--", repository, str(bare)], f"git clone {repository}")
    found = _run_git(["-C", str(bare), "rev-parse", "--verify", "--quiet", "--end-of-options",
                      f"{ref}^{{commit}}"])  # fmt: skip
    if found.returncode != 0:
        raise ManifestError(f"git ref {ref!r} not found in {repository}")
    commit = found.stdout.decode().strip()
    archive = _git(["-C", str(bare), "archive", "--format=tar", commit], f"git archive {ref}")
    tree = folder / "tree"
    try:
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")  # links out of the tree are refused
    except tarfile.TarError as error:
        raise ManifestError(f"{repository}@{ref}: {_line(str(error))}") from None
    return tree


def _git(arguments: list[str], what: str) -> bytes:
    """Runs ``git``; its output, or ManifestError with git's first ``fatal:`` line (the
    last lines are often advice: "Please make sure you have the correct access rights")."""
    done = _run_git(arguments)
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.decode(errors="replace").splitlines()]
        said = [line for line in lines if line.startswith(("fatal:", "error:"))] or [
            line for line in lines if line
        ]
        raise ManifestError(f"{what}: {said[0] if said else 'failed'}")
    return done.stdout


def _run_git(arguments: list[str]) -> "subprocess.CompletedProcess[bytes]":
    """``git`` with no prompt for credentials (an answer, never a wait)."""
    try:
        return subprocess.run(
            ["git", *arguments],
            capture_output=True,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
            check=False,
        )
    except FileNotFoundError:
        raise ManifestError("git is not installed: Git sources need the git command") from None


def _load_path(path: Path, shown: str) -> list[Manifest]:
    """The objects in a folder or a file; ``shown`` names ``path`` in errors (a Git
    tree's root: ``URL@REF:``)."""
    if path.is_file():
        return list(_objects(path, path.name, shown))
    prefix = shown if shown.endswith(":") else f"{shown}/"
    return [
        manifest
        for relative in _files(path)
        for manifest in _objects(path / relative, relative, f"{prefix}{relative}")
    ]


def _files(folder: Path) -> list[str]:
    """The manifest files under ``folder``, relative POSIX paths in order; hidden folders
    and files are passed over."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(SUFFIXES):
                found.append(Path(parent, name).relative_to(folder).as_posix())
    return sorted(found)


def _objects(file: Path, relative: str, shown: str) -> Iterator[Manifest]:
    """The objects of one file; ``shown`` names it in errors."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{shown}: not UTF-8 text") from None
    except OSError as error:
        raise ManifestError(f"{shown}: {error.strerror}") from None
    documents = _documents(text, shown, as_json=file.suffix.lower() == ".json")
    for number, document in enumerate(documents, start=1):
        fragment = f"#{number}" if len(documents) > 1 else ""
        yield from _declared(document, relative, shown, fragment)


def _documents(text: str, shown: str, as_json: bool) -> list[Any]:
    """A file's documents (one for JSON); raises ManifestError for what is not YAML or JSON."""
    if as_json:
        try:
            return [json.loads(text)]
        except json.JSONDecodeError as error:
            place = f"line {error.lineno}, column {error.colno}"
            raise ManifestError(f"{shown}: not JSON ({place}: {error.msg})") from None
    try:
        if expanded_size(yaml.parse(text, Loader=_Loader), _DEEPEST, _MOST_NODES) > _MOST_NODES:
            raise ManifestError(
                f"{shown}: too large: more than {_MOST_NODES:,} values once its YAML aliases "
                f"are expanded, or nested more than {_DEEPEST} deep"
            )
        return list(yaml.load_all(text, Loader=_Loader))
    except yaml.MarkedYAMLError as error:
        mark, problem = error.problem_mark, _line(error.problem or str(error))
        place = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError(f"{shown}: not YAML ({place}{problem})") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{shown}: not YAML ({_line(str(error))})") from None


def _declared(document: Any, relative: str, shown: str, fragment: str) -> Iterator[Manifest]:
    """The objects of one document (``fragment``: ``#N`` in a file of several, else
    empty): none when it is empty or a Secret, a List's items."""
    if document is None or _is_secret(document):
        return
    if isinstance(document, dict) and _is_list(document):
        for index, entry in enumerate(document["items"]):
            where = f"{fragment or '#'}/items/{index}"
            if not _is_secret(entry):
                yield Manifest(f"{relative}{where}", _checked(entry, f"{shown}{where}"))
        return
    yield Manifest(f"{relative}{fragment}", _checked(document, f"{shown}{fragment}"))


def _checked(document: Any, shown: str) -> dict[str, Any]:
    """``document`` when it is a Kubernetes object; else ManifestError saying what lacks."""
    if not isinstance(document, dict):
        raise ManifestError(f"{shown}: not a Kubernetes object (a {type(document).__name__})")
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if str(api_version).startswith("kustomize.config.k8s.io/"):
        raise ManifestError(f"{shown}: a Kustomize file: load what `kustomize build` writes")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    for field, value in (("apiVersion", api_version), ("kind", kind), ("metadata.name", name)):
        if not isinstance(value, str) or not value:
            raise ManifestError(f"{shown}: not a Kubernetes object (no {field})")
    return document


def _is_list(document: dict[str, Any]) -> bool:
    kind, items = document.get("kind"), document.get("items")
    return isinstance(kind, str) and kind.endswith("List") and isinstance(items, list)


def _is_secret(document: Any) -> bool:
    if not isinstance(document, dict):
        return False
    return (document.get("apiVersion"), document.get("kind")) == ("v1", "Secret")


def _line(text: str) -> str:
    """``text`` on one line."""
    return " ".join(text.split())
