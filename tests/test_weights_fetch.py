"""`weights fetch`: downloads land verified or not at all.

A local HTTP server in a thread stands in for GitHub (the one thing outside our
control); the manifest entries are built here and point at it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import socket
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipeline import weights
from pipeline.__main__ import main
from pipeline.errors import MissingWeights, WeightsError
from pipeline.fetch import fetch as fetch_files


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    location: str | None = None  # a redirect target
    claimed_length: int | None = None  # a Content-Length larger than the body: the connection drops early


@dataclass
class FakeReleaseServer:
    """Serves `routes` by path and counts the requests for each."""

    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def server():
    state = FakeReleaseServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state.hits[self.path] = state.hits.get(self.path, 0) + 1
            route = state.routes.get(self.path, Route(b"not found", 404))
            self.send_response(route.status)
            if route.location:
                self.send_header("Location", state.url + route.location)
            self.send_header("Content-Length", str(route.claimed_length or len(route.body)))
            self.end_headers()
            self.wfile.write(route.body)

        def log_message(self, *args):
            pass

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{http_server.server_address[1]}"
    thread = threading.Thread(target=http_server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield state
    http_server.shutdown()
    http_server.server_close()


def payload(size: int = 5000, seed: int = 1) -> bytes:
    """Random bytes standing in for a checkpoint."""
    return random.Random(seed).randbytes(size)


def entry(name: str, content: bytes, url: str | None, **fields) -> weights.WeightFile:
    """A manifest entry whose size and sha256 are those of `content`."""
    values = dict(
        file=f"{name}.pth", size=len(content), sha256=hashlib.sha256(content).hexdigest(), license="test",
        needed_by="tests", source=url, url=url,
    )
    return weights.WeightFile(name=name, **{**values, **fields})


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def fetch(names, folder, *entries):
    progress = io.StringIO()
    outcomes = fetch_files(names, folder, manifest={e.name: e for e in entries}, progress=progress)
    return outcomes, progress.getvalue()


def test_plain_file_downloads_verifies_and_lands_with_progress(tmp_path, server):
    content = payload()
    server.routes["/release/model.pth"] = Route(content)
    model = entry("model", content, server.url + "/release/model.pth")
    [outcome], progress = fetch(["model"], tmp_path / "weights", model)
    assert outcome.ok, outcome.message
    assert "fetched" in outcome.message and hashlib.sha256(content).hexdigest() in outcome.message
    assert (tmp_path / "weights" / "model.pth").read_bytes() == content
    assert os.listdir(tmp_path / "weights") == ["model.pth"]
    assert "model: 0.0 / 0.0 MB 100%" in progress and "MB/s" in progress
    weights.locate_entry(model, tmp_path / "weights")  # passes the same check every user of the file runs


def test_zip_member_is_extracted_alone_and_the_archive_is_gone(tmp_path, server):
    generator = payload(seed=2)
    server.routes["/1.0/checkpoints.zip"] = Route(zip_bytes({
        "checkpoints/people/latest_net_D.pth": payload(seed=3),
        "checkpoints/people/latest_net_G.pth": generator,
        "__MACOSX/checkpoints/people/._latest_net_G.pth": b"resource fork",
    }))
    simswap = entry(
        "simswap_224", generator, server.url + "/1.0/checkpoints.zip", file="latest_net_G.pth",
        archive_member="*people/latest_net_G.pth",
    )
    [outcome], _ = fetch(["simswap_224"], tmp_path, simswap)
    assert outcome.ok, outcome.message
    assert os.listdir(tmp_path) == ["latest_net_G.pth"]
    assert (tmp_path / "latest_net_G.pth").read_bytes() == generator


def test_zip_member_names_never_become_paths(tmp_path, server):
    """A member named `../../outside.pth` still lands only as the manifest's file."""
    content = payload(seed=4)
    server.routes["/evil.zip"] = Route(zip_bytes({"../../outside.pth": content}))
    model = entry("model", content, server.url + "/evil.zip", archive_member="*outside.pth")
    folder = tmp_path / "a" / "weights"
    [outcome], _ = fetch(["model"], folder, model)
    assert outcome.ok, outcome.message
    assert (folder / "model.pth").read_bytes() == content
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["model.pth"]


def test_manifest_file_name_outside_the_folder_is_refused(tmp_path, server):
    content = payload()
    server.routes["/model.pth"] = Route(content)
    [outcome], _ = fetch(["model"], tmp_path / "weights", entry("model", content, server.url + "/model.pth", file="../x.pth"))
    assert not outcome.ok and "outside the weights folder" in outcome.message
    assert not (tmp_path / "x.pth").exists() and server.hits == {}


def test_zip_without_the_member_is_reported(tmp_path, server):
    content = payload()
    server.routes["/512.zip"] = Route(zip_bytes({"512/550000_net_D.pth": content}))
    [outcome], _ = fetch(["m"], tmp_path, entry("m", content, server.url + "/512.zip", archive_member="*512/550000_net_G.pth"))
    assert not outcome.ok
    assert "exactly one file matching '*512/550000_net_G.pth'; found: none" in outcome.message
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "fields, words",
    [({"size": 4999}, "has 5000 bytes, the manifest expects 4999"), ({"sha256": "ab" * 32}, "does not match its sha256")],
)
def test_a_wrong_download_is_rejected_and_deleted(tmp_path, server, fields, words):
    server.routes["/model.pth"] = Route(payload())
    [outcome], _ = fetch(["model"], tmp_path, entry("model", payload(), server.url + "/model.pth", **fields))
    assert not outcome.ok
    assert words in outcome.message and server.url + "/model.pth" in outcome.message
    assert os.listdir(tmp_path) == []


def test_published_hash_prefix_is_checked(tmp_path, server):
    content = payload()
    server.routes["/model.pth"] = Route(content)
    wrong = entry("model", content, server.url + "/model.pth", sha256=None, sha256_prefix="0000beef")
    [outcome], _ = fetch(["model"], tmp_path, wrong)
    assert not outcome.ok and "does not match its sha256" in outcome.message
    right = entry("model", content, server.url + "/model.pth", sha256=None, sha256_prefix=hashlib.sha256(content).hexdigest()[:16])
    [outcome], _ = fetch(["model"], tmp_path, right)
    assert outcome.ok and "full sha256 (its prefix was checked)" in outcome.message


def test_unknown_size_and_hash_are_computed_and_reported_for_pinning(tmp_path, server):
    content = payload()
    server.routes["/ffhq.pkl"] = Route(content)
    [outcome], _ = fetch(["ffhq"], tmp_path, entry("ffhq", content, server.url + "/ffhq.pkl", size=None, sha256=None))
    assert outcome.ok
    assert f"(5000 bytes, sha256 {hashlib.sha256(content).hexdigest()})" in outcome.message
    assert "the manifest gives no size or sha256, so that could not be checked: pin" in outcome.message


def test_http_404_is_reported_and_the_other_file_still_lands(tmp_path, server):
    content = payload()
    server.routes["/good.pth"] = Route(content)
    missing = entry("missing", content, server.url + "/gone.pth")
    good = entry("good", content, server.url + "/good.pth")
    outcomes, _ = fetch(["missing", "good"], tmp_path, missing, good)
    assert [o.ok for o in outcomes] == [False, True]
    assert outcomes[0].message == f"missing: cannot download {server.url}/gone.pth: HTTP 404 Not Found"
    assert os.listdir(tmp_path) == ["good.pth"]


def test_connection_refused_is_reported(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes
    url = f"http://127.0.0.1:{port}/model.pth"
    [outcome], _ = fetch(["model"], tmp_path, entry("model", payload(), url))
    assert outcome.message == f"model: cannot download {url}: the connection was refused"
    assert os.listdir(tmp_path) == []


def test_a_connection_that_drops_early_leaves_no_partial_file(tmp_path, server):
    content = payload()
    server.routes["/model.pth"] = Route(content, claimed_length=len(content) + 1000)
    [outcome], _ = fetch(["model"], tmp_path, entry("model", content, server.url + "/model.pth"))
    assert outcome.message == f"model: cannot download {server.url}/model.pth: the server closed the connection after 5000 of 6000 bytes"
    assert os.listdir(tmp_path) == []


def test_redirect_is_followed(tmp_path, server):
    content = payload()
    server.routes["/releases/download/1.0/model.pth"] = Route(status=302, location="/objects/abc123")
    server.routes["/objects/abc123"] = Route(content)
    [outcome], _ = fetch(["model"], tmp_path, entry("model", content, server.url + "/releases/download/1.0/model.pth"))
    assert outcome.ok, outcome.message
    assert server.hits == {"/releases/download/1.0/model.pth": 1, "/objects/abc123": 1}
    assert (tmp_path / "model.pth").read_bytes() == content


def test_present_files_are_not_downloaded_again_and_corrupt_ones_are_replaced(tmp_path, server):
    first, second = payload(seed=5), payload(seed=6)
    server.routes["/first.pth"] = Route(first)
    server.routes["/second.pth"] = Route(second)
    entries = entry("first", first, server.url + "/first.pth"), entry("second", second, server.url + "/second.pth")
    outcomes, _ = fetch([], tmp_path, *entries)
    assert [o.ok for o in outcomes] == [True, True]
    [again], _ = fetch(["first"], tmp_path, *entries)
    assert again.message == "first: ok, already present"
    assert fetch([], tmp_path, *entries)[0] == []  # nothing missing: nothing to do
    (tmp_path / "second.pth").write_bytes(second[:-1])
    [repaired], _ = fetch([], tmp_path, *entries)
    assert repaired.name == "second" and repaired.ok
    assert server.hits == {"/first.pth": 1, "/second.pth": 2}
    assert (tmp_path / "second.pth").read_bytes() == second


def test_package_and_shipped_files_are_not_downloads(tmp_path):
    package = entry("parser", b"", None, package="no_such_package_here", file="models/p.dat")
    shipped = entry("shipped", b"", None, fetch="git checkout -- weights/shipped.pth")
    outcomes, _ = fetch(["parser", "shipped"], tmp_path, package, shipped)
    assert [o.ok for o in outcomes] == [False, False]
    assert outcomes[0].message.endswith("comes with the no_such_package_here package, not a download: " + weights.MODELS_INSTALL_COMMAND)
    assert outcomes[1].message == "shipped is not a download: git checkout -- weights/shipped.pth"
    assert os.listdir(tmp_path) == []


def test_unknown_name_raises_before_anything_is_fetched(tmp_path, server):
    with pytest.raises(WeightsError, match="unknown model 'nope'; known: model"):
        fetch(["model", "nope"], tmp_path, entry("model", payload(), server.url + "/model.pth"))
    assert server.hits == {}


@pytest.fixture
def manifest_file(tmp_path, server, monkeypatch):
    """A manifest with one good and one missing download, and a weights folder, both given to the CLI by environment."""
    content = payload()
    server.routes["/good.pth"] = Route(content)
    manifest = {
        "good": {"file": "good.pth", "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                 "license": "MIT", "needed_by": "tests", "source": "a test", "url": server.url + "/good.pth"},
        "gone": {"file": "gone.pth", "size": 10, "sha256": None, "license": "MIT", "needed_by": "the gone feature",
                 "source": "a test", "url": server.url + "/gone.pth"},
    }
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    monkeypatch.setenv("PIPELINE_WEIGHTS_MANIFEST", str(path))
    monkeypatch.setenv("PIPELINE_WEIGHTS_DIR", str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_cli_fetches_what_it_can_and_exits_2_naming_the_failure(manifest_file, server, capsys):
    assert main(["weights", "fetch"]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("good: fetched ") and len(out.splitlines()) == 1
    assert f"gone: cannot download {server.url}/gone.pth: HTTP 404 Not Found" in err.splitlines()
    assert "good: 0.0 / 0.0 MB 100%" in err
    assert err.splitlines()[-1] == "error: 1 of 2 files are not in place: gone"
    assert os.listdir(manifest_file) == ["good.pth"]


def test_cli_status_uses_the_configured_folder_and_names_the_fetch_command(manifest_file, capsys):
    assert main(["weights", "fetch", "good"]) == 0
    capsys.readouterr()
    assert main(["weights", "status"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"weights folder: {manifest_file}"
    assert out[1].split()[:2] == ["good", "ok"]
    assert out[2].split()[:2] == ["gone", "missing"] and "the gone feature" in out[2]
    assert out[3].split() == ["fetch:", ".venv/bin/python", "-m", "pipeline", "weights", "fetch", "gone", "(downloads", f"{weights.read_manifest()['gone'].url})"]


def test_missing_file_error_names_the_fetch_command_and_url(manifest_file):
    with pytest.raises(MissingWeights) as caught:
        weights.locate("gone", manifest_file)
    assert caught.value.file.endswith("gone.pth")
    assert "weights fetch gone" in str(caught.value) and "/gone.pth" in str(caught.value)


def test_cli_unknown_name_exits_2_with_one_line(capsys):
    assert main(["weights", "fetch", "no_such_model"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert "unknown model 'no_such_model'" in err and "simswap_224" in err
