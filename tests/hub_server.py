"""A Hugging Face hub on 127.0.0.1 for tests: the few endpoints ``huggingface_hub`` calls to
download a model (repository info at a revision, the file tree, file HEAD/GET with Range), with
tokens, missing revisions and broken transfers on demand."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass
class Repo:
    files: dict[str, bytes]
    revisions: dict[str, str]  # branch or tag -> commit
    token: str | None = None  # private: only this bearer token may read it

    @property
    def commits(self) -> set[str]:
        return set(self.revisions.values())


@dataclass
class Hub:
    repos: dict[str, Repo] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range
    faults: dict[str, list[str]] = field(default_factory=dict)  # file name -> "cut" / "fail" per GET, in turn
    url: str = ""

    def add(self, repo_id: str, folder: Path | None = None, files: dict[str, bytes] | None = None,
            token: str | None = None, tags: tuple[str, ...] = ()) -> str:
        """Serve ``folder``'s files (and ``files``) as ``repo_id``; returns its commit."""
        content = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()} if folder else {}
        content |= files or {}
        commit = hashlib.sha1(b"".join(k.encode() + v for k, v in sorted(content.items()))).hexdigest()
        self.repos[repo_id] = Repo(content, {"main": commit, **dict.fromkeys(tags, commit)}, token)
        return commit

    def downloads(self, name: str) -> list[str | None]:
        """The Range header of every GET of file ``name``."""
        return [r for m, p, r in self.log if m == "GET" and p.endswith("/" + name) and "/resolve/" in p]


def _oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def serve(hub: Hub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def _send(self, code: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
            self.send_response(code)
            for k, v in (headers or {}).items():
                self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _error(self, code: int, error_code: str, head: bool = False):
            self._send(code, json.dumps({"error": error_code}).encode(),
                       {"X-Error-Code": error_code, "X-Error-Message": error_code, "Content-Type": "application/json"},
                       head)

        def _repo(self, repo_id: str, head: bool = False) -> Repo | None:
            repo = hub.repos.get(repo_id)
            if repo is None or (repo.token and self.headers.get("Authorization") != f"Bearer {repo.token}"):
                self._error(401 if repo else 404, "RepoNotFound", head)
                return None
            return repo

        def _commit(self, repo: Repo, rev: str, head: bool = False) -> str | None:
            commit = repo.revisions.get(rev) or (rev if rev in repo.commits else None)
            if commit is None:
                self._error(404, "RevisionNotFound", head)
            return commit

        def do_HEAD(self):
            self._resolve(head=True)

        def do_GET(self):
            path = unquote(urlsplit(self.path).path)
            hub.log.append(("GET", path, self.headers.get("Range")))
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] in ("revision", "tree"):
                repo = self._repo(f"{parts[2]}/{parts[3]}")
                commit = repo and self._commit(repo, parts[5])
                if not commit:
                    return
                if parts[4] == "revision":
                    siblings = [{"rfilename": n, "size": len(d), "blobId": _oid(d)} for n, d in repo.files.items()]
                    body = {"id": f"{parts[2]}/{parts[3]}", "sha": commit, "private": bool(repo.token),
                            "siblings": siblings}
                else:
                    body = [{"type": "file", "path": n, "size": len(d), "oid": _oid(d)} for n, d in repo.files.items()]
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
                return
            self._resolve(head=False)

        def _resolve(self, head: bool):
            path = unquote(urlsplit(self.path).path)
            if head:
                hub.log.append(("HEAD", path, None))
            parts = path.strip("/").split("/")
            if len(parts) < 5 or parts[2] != "resolve":
                return self._error(404, "NotFound", head)
            repo = self._repo(f"{parts[0]}/{parts[1]}", head)
            commit = repo and self._commit(repo, parts[3], head)
            if not commit:
                return
            name = "/".join(parts[4:])
            if name not in repo.files:
                return self._error(404, "EntryNotFound", head)
            data = repo.files[name]
            headers = {"X-Repo-Commit": commit, "ETag": f'"{_oid(data)}"', "Accept-Ranges": "bytes"}
            if head:
                return self._send(200, data, headers, head=True)
            start = 0
            if (r := self.headers.get("Range")) and r.startswith("bytes="):
                start = int(r[6:].split("-")[0])
            fault = hub.faults.get(name, []).pop(0) if hub.faults.get(name) else None
            if fault == "fail":
                return self._error(500, "InternalError")
            body = data[start:]
            code = 206 if start else 200
            if start:
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            if fault == "cut":  # promise the whole body, send half of it, hang up
                self.send_response(code)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self._send(code, body, headers)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    hub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server
