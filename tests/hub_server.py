"""A small Hugging Face Hub look-alike for tests: the HTTP endpoints huggingface_hub (and, through it,
transformers) calls to create a repo, commit files, read repo info and download files.

Run it as a thread on 127.0.0.1 with an ephemeral port and point ``HF_ENDPOINT`` at ``server.url``::

    with LocalHubServer() as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...

Storage is content addressed under a temporary folder: ``blobs/<sha256>`` hold file contents, every commit is
a JSON manifest ``{path: {"blob", "size", "git_oid"}}`` and a repo's ``refs.json`` maps branch names to commit
ids.

Uploads: ``preupload`` answers ``"regular"`` for every file, so huggingface_hub sends contents base64-encoded
inside the NDJSON commit and never needs the LFS / Xet storage services. Only what huggingface_hub 1.x-2.x
sends is implemented; anything else gets a 404/400 whose body names the route, so a test failure says what is
missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import tempfile
import threading
import time
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

DEFAULT_USER = "local-user"
_REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


def git_blob_oid(data: bytes) -> str:
    """The git object id of a blob: huggingface_hub compares it with its local oid to skip unchanged files."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class HubError(Exception):
    """An HTTP error answer, with the ``X-Error-Code`` huggingface_hub maps to its exception classes."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None,
                 body: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit
        self.body = body or {}  # extra JSON fields of the answer


class RepoStore:
    """Repositories on disk: create, commit, resolve revisions, read files. One lock serialises writes."""

    def __init__(self, root: Path):
        self.root = Path(root)
        (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    # -- layout ----------------------------------------------------------------------------------------------
    def _repo_dir(self, repo_type: str, repo_id: str) -> Path:
        return self.root / "repos" / repo_type / repo_id

    def _meta(self, repo_type: str, repo_id: str) -> dict:
        path = self._repo_dir(repo_type, repo_id) / "repo.json"
        if not path.is_file():
            raise HubError(404, f"Repository {repo_type}/{repo_id} not found", "RepoNotFound")
        return json.loads(path.read_text())

    def _write_meta(self, repo_type: str, repo_id: str, meta: dict) -> None:
        (self._repo_dir(repo_type, repo_id) / "repo.json").write_text(json.dumps(meta, indent=1))

    # -- repos -----------------------------------------------------------------------------------------------
    def exists(self, repo_type: str, repo_id: str) -> bool:
        return (self._repo_dir(repo_type, repo_id) / "repo.json").is_file()

    def create(self, repo_type: str, repo_id: str, private: bool) -> None:
        with self._lock:
            if self.exists(repo_type, repo_id):
                raise HubError(409, f"You already created this {repo_type} repo: {repo_id}")
            self._repo_dir(repo_type, repo_id).mkdir(parents=True)
            now = time.time()
            meta = {"private": private, "created": now, "refs": {}, "commits": {}}
            self._write_meta(repo_type, repo_id, meta)
            # A new Hub repo has one commit holding .gitattributes; huggingface_hub expects main to resolve.
            gitattributes = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"
            self._commit_locked(repo_type, repo_id, meta, "main", "initial commit",
                                {".gitattributes": gitattributes}, [], [])

    def is_private(self, repo_type: str, repo_id: str) -> bool:
        return bool(self._meta(repo_type, repo_id)["private"])

    def resolve(self, repo_type: str, repo_id: str, revision: str) -> str:
        """Branch name or full commit id -> commit id."""
        meta = self._meta(repo_type, repo_id)
        revision = unquote(revision)
        if revision in meta["refs"]:
            return meta["refs"][revision]
        if _COMMIT_RE.match(revision) and revision in meta["commits"]:
            return revision
        raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def manifest(self, repo_type: str, repo_id: str, commit: str) -> dict:
        meta = self._meta(repo_type, repo_id)
        return json.loads((self._repo_dir(repo_type, repo_id) / "commits" / f"{commit}.json").read_text()) \
            if commit in meta["commits"] else {}

    def commit_time(self, repo_type: str, repo_id: str, commit: str) -> float:
        return self._meta(repo_type, repo_id)["commits"][commit]["time"]

    def blob_path(self, sha256: str) -> Path:
        return self.root / "blobs" / sha256

    def commit(self, repo_type: str, repo_id: str, branch: str, message: str, files: dict[str, bytes],
               deleted_files: list[str], deleted_folders: list[str], parent: str | None = None) -> str:
        with self._lock:
            meta = self._meta(repo_type, repo_id)
            if parent is not None and meta["refs"].get(branch) != parent:
                raise HubError(412, f"Parent commit {parent} is not the head of {branch}")
            return self._commit_locked(repo_type, repo_id, meta, branch, message, files, deleted_files,
                                       deleted_folders)

    def _commit_locked(self, repo_type, repo_id, meta, branch, message, files, deleted_files,
                       deleted_folders):
        head = meta["refs"].get(branch)
        manifest = dict(self.manifest(repo_type, repo_id, head)) if head else {}
        for path in deleted_files:
            if path not in manifest:
                raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
            del manifest[path]
        for folder in deleted_folders:
            prefix = folder.rstrip("/") + "/"
            for path in [p for p in manifest if p.startswith(prefix)]:
                del manifest[path]
        for path, data in files.items():
            sha256 = hashlib.sha256(data).hexdigest()
            blob = self.blob_path(sha256)
            if not blob.exists():
                blob.write_bytes(data)
            manifest[path] = {"blob": sha256, "size": len(data), "git_oid": git_blob_oid(data)}
        commit = hashlib.sha1(f"{repo_id}:{head}:{message}:{uuid.uuid4()}".encode()).hexdigest()
        commits_dir = self._repo_dir(repo_type, repo_id) / "commits"
        commits_dir.mkdir(exist_ok=True)
        (commits_dir / f"{commit}.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        meta["commits"][commit] = {"parent": head, "message": message, "time": time.time()}
        meta["refs"][branch] = commit
        self._write_meta(repo_type, repo_id, meta)
        return commit


def validate_card_metadata(content: str) -> list[str]:
    """The checks the Hub makes on a README's YAML block that matter to us: parseable, a mapping, and a
    well-formed ``model-index`` (every result names its task type, dataset name/type and metrics with
    type/value)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, flags=re.DOTALL)
    if match is None:
        return []
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        return [f"YAML metadata is not valid YAML: {err}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["YAML metadata must be a mapping"]
    errors = []
    for index, entry in enumerate(data.get("model-index") or []):
        if not isinstance(entry, dict) or "name" not in entry:
            errors.append(f"model-index[{index}] must have a name")
            continue
        for r, result in enumerate(entry.get("results") or []):
            where = f"model-index[{index}].results[{r}]"
            if not isinstance(result.get("task"), dict) or "type" not in result["task"]:
                errors.append(f"{where}.task.type is required")
            dataset = result.get("dataset")
            if not isinstance(dataset, dict) or "name" not in dataset or "type" not in dataset:
                errors.append(f"{where}.dataset needs name and type")
            metrics = result.get("metrics")
            if not metrics:
                errors.append(f"{where}.metrics is required")
            for m, metric in enumerate(metrics or []):
                if not isinstance(metric, dict) or "type" not in metric or "value" not in metric:
                    errors.append(f"{where}.metrics[{m}] needs type and value")
    return errors


class _Handler(BaseHTTPRequestHandler):
    """Routes requests to the store; ``server.hub`` is the owning LocalHubServer."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        self.server.hub.log.append(f"{self.command} {self.path} -> {args[1] if len(args) > 1 else ''}")

    # -- plumbing --------------------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None,
              content_type: str = "application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200, headers: dict | None = None):
        self._send(status, json.dumps(payload).encode(), headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            return self.rfile.read(length)
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return b""

    def _authorized(self) -> bool:
        return self.headers.get("Authorization", "").startswith("Bearer ")

    def _require_auth(self):
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _check_read(self, repo_type, repo_id):
        if self.server.hub.store.is_private(repo_type, repo_id) and not self._authorized():
            raise HubError(401, f"Repository {repo_id} is private", "RepoNotFound")

    def _dispatch(self):
        url = urlsplit(self.path)
        self.query = parse_qs(url.query)
        parts = [unquote(p) for p in url.path.strip("/").split("/")] if url.path.strip("/") else []
        try:
            self._route(parts)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            if err.commit:
                headers["X-Repo-Commit"] = err.commit
            self._json({"error": err.message, **err.body}, err.status, headers)
        except Exception as err:  # a bug here must show up in the test, not hang the client
            self._json({"error": f"local hub server error: {err!r}"}, 500)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _dispatch

    # -- routing ---------------------------------------------------------------------------------------------
    def _route(self, parts: list[str]):
        store = self.server.hub.store
        method = self.command
        if parts[:1] == ["api"]:
            rest = parts[1:]
            if rest == ["whoami-v2"] and method == "GET":
                self._require_auth()
                return self._json({"type": "user", "name": DEFAULT_USER, "orgs": [],
                                   "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
            if rest == ["repos", "create"] and method == "POST":
                return self._create_repo()
            if rest == ["validate-yaml"] and method == "POST":
                payload = json.loads(self._body() or b"{}")
                errors = validate_card_metadata(payload.get("content", ""))
                if errors:
                    return self._json({"errors": [{"message": e} for e in errors], "warnings": []}, 400)
                return self._json({"errors": [], "warnings": []})
            if len(rest) >= 3 and rest[0] in _REPO_TYPES:
                repo_type, repo_id, tail = _REPO_TYPES[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:]
                if not store.exists(repo_type, repo_id):
                    raise HubError(404, f"Repository Not Found for url: {self.path}", "RepoNotFound")
                return self._repo_api(repo_type, repo_id, tail)
        else:
            repo_type = "model"
            if parts[:1] and parts[0] in ("datasets", "spaces"):
                repo_type, parts = _REPO_TYPES[parts[0]], parts[1:]
            if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
                repo_id = f"{parts[0]}/{parts[1]}"
                if not store.exists(repo_type, repo_id):
                    raise HubError(404, f"Repository Not Found for url: {self.path}", "RepoNotFound")
                self._check_read(repo_type, repo_id)
                return self._resolve_file(repo_type, repo_id, parts[3], "/".join(parts[4:]))
        raise HubError(404, f"local hub server: no route for {method} {self.path}")

    def _create_repo(self):
        self._require_auth()
        payload = json.loads(self._body() or b"{}")
        name, namespace = payload["name"], payload.get("organization") or DEFAULT_USER
        repo_type = payload.get("type") or "model"
        repo_id = f"{namespace}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.hub.url}/{prefix}{repo_id}"
        try:
            self.server.hub.store.create(repo_type, repo_id, private)
        except HubError as err:
            err.body["url"] = url  # the Hub names the existing repo; create_repo(exist_ok=True) reads it
            raise
        self._json({"url": url, "name": repo_id, "id": uuid.uuid4().hex})

    def _repo_api(self, repo_type: str, repo_id: str, tail: list[str]):
        store, method = self.server.hub.store, self.command
        if method == "GET" and (not tail or tail[0] == "revision"):
            self._check_read(repo_type, repo_id)
            revision = "/".join(tail[1:]) if tail else "main"
            return self._json(self._repo_info(repo_type, repo_id, revision))
        if method == "POST" and tail[:1] == ["preupload"]:
            self._require_auth()
            commit = store.resolve(repo_type, repo_id, "/".join(tail[1:]))
            manifest = store.manifest(repo_type, repo_id, commit)
            files = json.loads(self._body())["files"]
            return self._json({"files": [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                 "oid": manifest[f["path"]]["git_oid"] if f["path"] in manifest else None}
                for f in files]})
        if method == "POST" and tail[:1] == ["commit"]:
            self._require_auth()
            return self._commit(repo_type, repo_id, "/".join(tail[1:]))
        if method == "GET" and tail[:1] == ["tree"]:
            self._check_read(repo_type, repo_id)
            commit = store.resolve(repo_type, repo_id, tail[1])
            return self._json(self._tree(store.manifest(repo_type, repo_id, commit), "/".join(tail[2:]),
                                         self.query.get("recursive", ["false"])[0].lower() == "true"))
        if method == "POST" and tail[:1] == ["paths-info"]:
            self._check_read(repo_type, repo_id)
            commit = store.resolve(repo_type, repo_id, "/".join(tail[1:]))
            manifest = store.manifest(repo_type, repo_id, commit)
            body = self._body().decode()
            wanted = json.loads(body)["paths"] if body.startswith("{") else parse_qs(body).get("paths", [])
            listing = self._tree(manifest, "", True)
            return self._json([entry for entry in listing if entry["path"] in set(wanted)])
        raise HubError(404, f"local hub server: no route for {method} {self.path}")

    # -- endpoints -------------------------------------------------------------------------------------------
    def _repo_info(self, repo_type: str, repo_id: str, revision: str) -> dict:
        store = self.server.hub.store
        commit = store.resolve(repo_type, repo_id, revision)
        manifest = store.manifest(repo_type, repo_id, commit)
        info = {
            "id": repo_id, "_id": hashlib.md5(repo_id.encode()).hexdigest()[:24],
            "author": repo_id.split("/")[0],
            "sha": commit, "private": store.is_private(repo_type, repo_id), "disabled": False, "gated": False,
            "lastModified": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                          time.gmtime(store.commit_time(repo_type, repo_id, commit))),
            "siblings": [{"rfilename": path, "size": entry["size"], "blobId": entry["git_oid"]}
                         for path, entry in sorted(manifest.items())],
            "tags": [], "downloads": 0, "likes": 0,
        }
        if repo_type == "model":
            info["modelId"] = repo_id
            card = manifest.get("README.md")
            if card is not None:
                text = store.blob_path(card["blob"]).read_text(encoding="utf-8", errors="replace")
                match = re.match(r"^---\s*\n(.*?)\n---", text, flags=re.DOTALL)
                data = (yaml.safe_load(match.group(1)) if match else None) or {}
                if isinstance(data, dict):
                    info["cardData"] = data
                    info["tags"] = list(data.get("tags") or [])
                    info["pipeline_tag"] = data.get("pipeline_tag")
                    info["library_name"] = data.get("library_name")
                    if data.get("model-index"):
                        info["model-index"] = data["model-index"]
            config = manifest.get("config.json")
            if config is not None:
                try:
                    info["config"] = json.loads(store.blob_path(config["blob"]).read_bytes())
                except ValueError:
                    pass
        return info

    @staticmethod
    def _tree(manifest: dict, folder: str, recursive: bool) -> list[dict]:
        prefix = folder.strip("/") + "/" if folder.strip("/") else ""
        entries, folders = [], set()
        for path, entry in sorted(manifest.items()):
            if not path.startswith(prefix):
                continue
            relative = path[len(prefix):]
            parents = relative.split("/")[:-1]
            for depth in range(1, len(parents) + 1):
                if recursive or depth == 1:
                    folders.add(prefix + "/".join(parents[:depth]))
            if recursive or not parents:
                entries.append({"type": "file", "path": path, "size": entry["size"], "oid": entry["git_oid"]})
        entries += [{"type": "directory", "path": f, "oid": hashlib.sha1(f.encode()).hexdigest()}
                    for f in sorted(folders)]
        return entries

    def _commit(self, repo_type: str, repo_id: str, revision: str):
        revision = unquote(revision)
        if self.query.get("create_pr"):
            raise HubError(400, "local hub server: pull requests are not supported")
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        header, files, deleted_files, deleted_folders = {}, {}, [], []
        for item in lines:
            key, value = item["key"], item["value"]
            if key == "header":
                header = value
            elif key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HubError(400, f"unsupported encoding {value.get('encoding')}")
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                deleted_files.append(value["path"])
            elif key == "deletedFolder":
                deleted_folders.append(value["path"])
            else:
                # preupload never answers "lfs", so an lfsFile line means the client ignored it.
                raise HubError(400, f"local hub server: commit operation {key!r} is not supported")
        store = self.server.hub.store
        if revision not in store._meta(repo_type, repo_id)["refs"]:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        commit = store.commit(repo_type, repo_id, revision, header.get("summary", ""), files, deleted_files,
                              deleted_folders, parent=header.get("parentCommit"))
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        self._json({"success": True, "commitOid": commit, "pullRequestUrl": None,
                    "commitUrl": f"{self.server.hub.url}/{prefix}{repo_id}/commit/{commit}"})

    def _resolve_file(self, repo_type: str, repo_id: str, revision: str, path: str):
        store = self.server.hub.store
        commit = store.resolve(repo_type, repo_id, revision)
        entry = store.manifest(repo_type, repo_id, commit).get(path)
        if entry is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit=commit)
        data = store.blob_path(entry["blob"]).read_bytes()
        headers = {"ETag": f'"{entry["git_oid"]}"', "X-Repo-Commit": commit, "Accept-Ranges": "bytes",
                   "Last-Modified": formatdate(store.commit_time(repo_type, repo_id, commit), usegmt=True)}
        status, body = 200, data
        match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range", ""))
        if match and self.command == "GET":
            start = int(match.group(1))
            end = int(match.group(2)) if match.group(2) else len(data) - 1
            status, body = 206, data[start:end + 1]
            headers["Content-Range"] = f"bytes {start}-{start + len(body) - 1}/{len(data)}"
        self._send(status, body, headers, content_type="application/octet-stream")


class LocalHubServer:
    """A Hub-compatible HTTP server in a background thread, storing repos in a temporary folder.

    ``url`` is the value for ``HF_ENDPOINT``; ``log`` lists the requests served ("METHOD path -> status")."""

    def __init__(self, root: str | Path | None = None):
        self._tmp = None if root is not None else tempfile.mkdtemp(prefix="local-hub-")
        self.store = RepoStore(Path(root) if root is not None else Path(self._tmp))
        self.log: list[str] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.hub = self
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="local-hub", daemon=True)

    def start(self) -> "LocalHubServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> "LocalHubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":  # `python tests/hub_server.py`: a server to try commands against by hand
    server = LocalHubServer().start()
    print(f"HF_ENDPOINT={server.url}  (Ctrl-C stops)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()
