#!/usr/bin/env python3
"""Fetches the GraphiQL playground's pinned packages from the npm registry, checks each
tarball against the integrity the registry publishes (SHA-512, as `npm ci` does), and writes
the files the server embeds, a gzip copy of each (served to clients that accept it), their
licences and `VERSIONS.json`.

  python3 assets/graphiql/update.py            # fetch the versions pinned below
  python3 assets/graphiql/update.py --check    # only check the files here against VERSIONS.json

To update: change a version in PACKAGES, run the script, rebuild, run the e2e suite
(`e2e/README.md`), commit everything it wrote. Uses nothing but Python's standard library.
"""
import argparse
import base64
import gzip
import hashlib
import io
import json
import os
import sys
import tarfile
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REGISTRY = "https://registry.npmjs.org"

# name, version, {file in the package: file written here}, licence file in the package
# (None: the package ships none; its licence is the one of the repository it comes from).
PACKAGES = [
    ("react", "18.3.1", {"umd/react.production.min.js": "react.production.min.js"}, "LICENSE"),
    ("react-dom", "18.3.1", {"umd/react-dom.production.min.js": "react-dom.production.min.js"},
     "LICENSE"),
    ("graphiql", "4.1.2", {"graphiql.min.js": "graphiql.min.js",
                           "graphiql.min.css": "graphiql.min.css"}, "LICENSE"),
    ("@graphiql/plugin-explorer", "4.0.6", {"dist/index.umd.js": "plugin-explorer.umd.js",
                                            "dist/style.css": "plugin-explorer.css"}, None),
    # Subscriptions from the playground, over the WebSocket protocol the server speaks.
    ("graphql-ws", "6.4.2", {"umd/graphql-ws.min.js": "graphql-ws.min.js"}, "LICENSE.md"),
]


def fetch(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read()


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def gzipped(data):
    # mtime 0: the same input gives the same bytes, so a re-run changes nothing.
    return gzip.compress(data, compresslevel=9, mtime=0)


def update():
    versions = {}
    licences = []
    for name, version, files, licence in PACKAGES:
        meta = json.loads(fetch(f"{REGISTRY}/{name.replace('/', '%2F')}/{version}"))
        tarball = fetch(meta["dist"]["tarball"])
        algorithm, expected = meta["dist"]["integrity"].split("-", 1)
        if algorithm != "sha512":
            sys.exit(f"{name}@{version}: unexpected integrity {algorithm}")
        actual = base64.b64encode(hashlib.sha512(tarball).digest()).decode()
        if actual != expected:
            sys.exit(f"{name}@{version}: tarball does not match the registry's integrity")
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            def member(path):
                return tar.extractfile(f"package/{path}").read()
            written = {}
            for source, target in files.items():
                data = member(source)
                with open(os.path.join(HERE, target), "wb") as f:
                    f.write(data)
                with open(os.path.join(HERE, target + ".gz"), "wb") as f:
                    f.write(gzipped(data))
                written[target] = sha256(data)
            text = member(licence).decode() if licence else None
        versions[name] = {"version": version, "integrity": meta["dist"]["integrity"],
                          "license": meta.get("license"), "files": written}
        licences.append((name, version, meta.get("license"), text))
        print(f"{name}@{version}: {', '.join(written)}")
    with open(os.path.join(HERE, "VERSIONS.json"), "w") as f:
        json.dump(versions, f, indent=2, sort_keys=True)
        f.write("\n")
    write_licences(licences)


def write_licences(licences):
    graphiql = next(text for name, _, _, text in licences if name == "graphiql")
    out = ["# Licences of the GraphiQL playground's files", "",
           "Written by `update.py` from the packages as published on the npm registry.", ""]
    for name, version, kind, text in licences:
        out += [f"## {name} {version} ({kind})", ""]
        if text is None:
            out += ["The package ships no licence file; it is published from the GraphiQL "
                    "repository (graphql/graphiql) under that repository's licence:", ""]
            text = graphiql
        out += ["```", text.strip(), "```", ""]
    with open(os.path.join(HERE, "LICENSES.md"), "w") as f:
        f.write("\n".join(out))


def check():
    with open(os.path.join(HERE, "VERSIONS.json")) as f:
        versions = json.load(f)
    bad = 0
    for name, entry in versions.items():
        for target, digest in entry["files"].items():
            with open(os.path.join(HERE, target), "rb") as f:
                data = f.read()
            with open(os.path.join(HERE, target + ".gz"), "rb") as f:
                packed = f.read()
            if sha256(data) != digest or gzip.decompress(packed) != data:
                print(f"{name}: {target} differs from VERSIONS.json")
                bad += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    if parser.parse_args().check:
        check()
    else:
        update()
