"""The official AsyncAPI 3.0.0 JSON Schema, from the `@asyncapi/specs` npm package at a pinned version.

`npm pack` fetches the tarball once into .cache/npm/ (git-ignored); its integrity is checked against the
pinned sha512, so a republished or tampered package fails the tests instead of validating against
something else. The bundled schemas/3.0.0.json carries every definition it refers to, keyed by
their `$id`s, so validation is offline. `.ci/run` installs npm where it is missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator

from tests.support.stack import ROOT

PACKAGE = "@asyncapi/specs"
VERSION = "6.11.1"
# `npm view @asyncapi/specs@6.11.1 dist.integrity`
INTEGRITY = "sha512-A3WBLqAKGoJ2+6FWFtpjBlCQ1oFCcs4GxF7zsIGvNqp/klGUHjlA3aAcZ9XMMpLGE8zPeYDz2x9FmO6DSuKraQ=="
CACHE = ROOT / ".cache" / "npm"
TARBALL = CACHE / f"asyncapi-specs-{VERSION}.tgz"
MEMBER = "package/schemas/3.0.0.json"


def npm_available() -> bool:
    return shutil.which("npm") is not None


def tarball() -> Path:
    """The pinned package's tarball, fetched with `npm pack` the first time, its integrity checked."""
    if not TARBALL.is_file():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(CACHE)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    digest = "sha512-" + base64.b64encode(hashlib.sha512(TARBALL.read_bytes()).digest()).decode()
    if digest != INTEGRITY:
        TARBALL.unlink()
        raise AssertionError(f"{TARBALL.name}: integrity {digest}, pinned {INTEGRITY}")
    return TARBALL


def schema() -> dict[str, Any]:
    """The bundled AsyncAPI 3.0.0 JSON Schema (draft-07, as its `$schema` says)."""
    with tarfile.open(tarball()) as archive:
        member = archive.extractfile(MEMBER)
        assert member is not None, f"{MEMBER} missing from {TARBALL.name}"
        found: dict[str, Any] = json.load(member)
    assert found["$schema"] == "http://json-schema.org/draft-07/schema", found["$schema"]
    return found


def validator() -> Draft7Validator:
    specification = schema()
    Draft7Validator.check_schema(specification)
    return Draft7Validator(specification)
