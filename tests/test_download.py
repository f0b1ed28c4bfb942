"""``edge-audio data download`` against a loopback HTTP server that serves small archives in the real layouts.

soundata's remote metadata (URL and MD5 of the archive and of the published index) is pointed at the server; the
server can cut a response short (an interrupted download), serve damaged bytes (a corrupt archive) and ignore
``Range`` requests, and it records every request so resuming is checked byte for byte.
"""
import hashlib
import io
import json
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import soundfile as sf

from edge_audio.cli import main
from edge_audio.data import load_dataset
from edge_audio.download import download_dataset, read_index
from edge_audio.errors import DatasetError, DownloadError

CLASSES = {0: "air_conditioner", 3: "dog_bark"}


def wav_bytes(seed: int) -> bytes:
    buffer = io.BytesIO()
    noise = np.random.default_rng(seed).uniform(-0.5, 0.5, 800).astype(np.float32)
    sf.write(buffer, noise, 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def urbansound8k_files() -> dict[str, bytes]:
    """UrbanSound8K's layout in miniature: 2 classes, 1 clip each in each of the 10 folds, its metadata CSV."""
    files, rows = {}, ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for fold in range(1, 11):
        for class_id, name in CLASSES.items():
            clip = f"{1000 + fold}-{class_id}-0-0.wav"
            files[f"audio/fold{fold}/{clip}"] = wav_bytes(100 * fold + class_id)
            rows.append(f"{clip},{1000 + fold},0.0,0.1,1,{fold},{class_id},{name}")
    files["metadata/UrbanSound8K.csv"] = ("\n".join(rows) + "\n").encode()
    return files


def esc50_files() -> dict[str, bytes]:
    files, rows = {}, ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, name in ((0, "dog"), (1, "rooster")):
            clip = f"{fold}-{100 + target}-A-{target}.wav"
            files[f"audio/{clip}"] = wav_bytes(10 * fold + target)
            rows.append(f"{clip},{fold},{target},{name},True,{100 + target},A")
    files["meta/esc50.csv"] = ("\n".join(rows) + "\n").encode()
    return files


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def soundata_index(files: dict[str, bytes]) -> bytes:
    """A published index in soundata's format: clips' audio as [path, md5], the metadata files likewise."""
    clips = {path.rsplit("/", 1)[-1][:-4]: {"audio": [path, md5(data)]}
             for path, data in files.items() if path.endswith(".wav")}
    metadata = {path.rsplit("/", 1)[-1]: [path, md5(data)] for path, data in files.items() if path.endswith(".csv")}
    return json.dumps({"version": "1.0", "clips": clips, "metadata": metadata}).encode()


def tar_gz(files: dict[str, bytes], top: str) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path, data in files.items():
            info = tarfile.TarInfo(f"{top}/{path}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def zip_of(files: dict[str, bytes], top: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, data in files.items():
            archive.writestr(f"{top}/{path}", data)
    return buffer.getvalue()


class FileServer:
    """Serves ``files`` on 127.0.0.1; ``cut[name] = n`` ends the next response for that file after n bytes,
    ``corrupt`` flips bytes of every response, ``ranges=False`` ignores Range headers; ``requests`` logs
    (file name, Range header)."""

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        self.cut, self.corrupt, self.ranges = {}, False, True
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                name = self.path.split("?")[0].lstrip("/")
                server.requests.append((name, self.headers.get("Range")))
                data = server.files.get(name)
                if data is None:
                    self.send_error(404)
                    return
                if server.corrupt:
                    data = bytes(b ^ 0xFF for b in data[:64]) + data[64:]
                start = 0
                if server.ranges and self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_error(416)
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if name in server.cut:
                    body = body[:server.cut.pop(name)]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def archive_requests(self, name: str) -> list:
        return [r for r in self.requests if r[0] == name]

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


DATASETS = {  # name: (soundata archive name, top folder in it, archive writer, files, index version)
    "urbansound8k": ("UrbanSound8K.tar.gz", "UrbanSound8K", tar_gz, urbansound8k_files, "1.0"),
    "esc50": ("ESC-50-master.zip", "ESC-50-master", zip_of, esc50_files, "2.0"),
}


@pytest.fixture(params=["urbansound8k"])
def served(request, monkeypatch):
    """(dataset name, its files, the server) with soundata's remotes for it pointed at the server."""
    import soundata.core
    from soundata.datasets import esc50, urbansound8k
    from soundata.download_utils import RemoteFileMetadata

    name = request.param
    archive_name, top, write, make_files, version = DATASETS[name]
    files = make_files()
    module = {"urbansound8k": urbansound8k, "esc50": esc50}[name]
    index_name = f"{name}_index_{version}.json"
    archive, index = write(files, top), soundata_index(files)
    server = FileServer({archive_name: archive, index_name: index})
    monkeypatch.setitem(module.REMOTES, "all", RemoteFileMetadata(
        filename=archive_name, url=f"{server.url}/{archive_name}?download=1", checksum=md5(archive),
        unpack_directories=[top]))
    monkeypatch.setitem(module.INDEXES, version, soundata.core.Index(
        filename=index_name, url=f"{server.url}/{index_name}?download=1", checksum=md5(index)))
    monkeypatch.delitem(module.REMOTES, "index", raising=False)
    yield name, files, server, archive_name
    server.stop()


@pytest.mark.parametrize("served", ["urbansound8k", "esc50"], indirect=True)
def test_download_unpacks_the_layout_verifies_every_file_and_then_fetches_nothing(served, tmp_path):
    name, files, server, archive_name = served
    report = download_dataset(name, tmp_path / "data", progress=False)
    assert report.files_verified == len(files) and report.archives_fetched == [archive_name]
    assert not (tmp_path / "data" / archive_name).exists()  # the archive is not kept by default
    dataset = load_dataset(tmp_path / "data")
    assert len(dataset) == len(files) - 1 and dataset.layout == name
    assert all((tmp_path / "data" / path).read_bytes() == data for path, data in files.items())

    again = download_dataset(name, tmp_path / "data", progress=False)
    assert again.archives_fetched == [] and len(server.archive_requests(archive_name)) == 1


@pytest.mark.parametrize("ranges", [True, False], ids=["server-resumes", "server-ignores-range"])
def test_an_interrupted_download_resumes_where_it_stopped(served, tmp_path, ranges):
    name, files, server, archive_name = served
    server.cut[archive_name], server.ranges = 5000, ranges
    with pytest.raises(DownloadError, match="interrupted after 5,000 of .* run the same command again"):
        download_dataset(name, tmp_path, progress=False)
    assert (tmp_path / f"{archive_name}.part").stat().st_size == 5000

    report = download_dataset(name, tmp_path, progress=False)
    assert server.archive_requests(archive_name)[-1] == (archive_name, "bytes=5000-")
    assert report.bytes_resumed == (5000 if ranges else 0)
    assert report.files_verified == len(files) and not (tmp_path / f"{archive_name}.part").exists()


def test_a_corrupt_archive_is_deleted_and_fetched_afresh_on_the_next_run(served, tmp_path):
    name, files, server, archive_name = served
    server.corrupt = True
    with pytest.raises(DownloadError, match="index.*is corrupt: MD5 .*deleted, run the same command again"):
        download_dataset(name, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []

    server.corrupt = False
    download_dataset(name, tmp_path, progress=False, keep_archive=True)
    assert (tmp_path / archive_name).is_file()  # kept on request
    server.corrupt = True
    (tmp_path / archive_name).unlink()
    for path in files:
        (tmp_path / path).unlink()
    with pytest.raises(DownloadError, match=f"{archive_name} .* is corrupt"):
        download_dataset(name, tmp_path, progress=False)
    assert not (tmp_path / archive_name).exists() and not (tmp_path / f"{archive_name}.part").exists()


def test_cli_downloads_from_a_mirror_and_check_uses_the_published_index(served, tmp_path, capsys):
    name, files, server, archive_name = served
    assert main(["data", "download", name, str(tmp_path / "us8k"), "--mirror", server.url, "-q"]) == 0
    out = capsys.readouterr().out
    assert f"{len(files)} files match the published index" in out and "20 clips, 2 classes, folds 1..10" in out
    assert all(path == archive_name or path.endswith(".json") for path, _ in server.requests)

    index = tmp_path / "us8k" / "urbansound8k_index_1.0.json"
    damaged = tmp_path / "us8k" / "audio" / "fold3" / "1003-3-0-0.wav"
    data = bytearray(damaged.read_bytes())
    data[-10:] = bytes(10)  # still a readable, full-length WAV: only the checksum can tell
    damaged.write_bytes(bytes(data))
    (tmp_path / "us8k" / "metadata" / "UrbanSound8K.csv").write_text(
        "\n".join(files["metadata/UrbanSound8K.csv"].decode().splitlines()[:-1]) + "\n")  # drop fold10's dog

    assert main(["data", "check", str(tmp_path / "us8k"), "-q"]) == 0  # without the index nothing is wrong
    assert "checksum mismatch" not in capsys.readouterr().out
    assert main(["data", "check", str(tmp_path / "us8k"), "--index", str(index), "-q",
                 "--max-bad-fraction", "0.01"]) == 1
    out = capsys.readouterr().out
    assert "checksum mismatch  1" in out and "- checksum mismatch: audio/fold3/1003-3-0-0.wav" in out
    assert "published index: 20 files, 1 of them not in the metadata" in out
    assert "not in the metadata: audio/fold10/1010-3-0-0.wav" in out


def test_download_and_check_errors_are_one_clear_line(served, tmp_path, capsys):
    name, files, server, archive_name = served
    assert main(["data", "download", name, str(tmp_path), "--mirror", f"{server.url}/nothing-here", "-q"]) == 1
    assert "HTTP 404" in capsys.readouterr().err
    server.stop()
    assert main(["data", "download", name, str(tmp_path), "--mirror", server.url, "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("edge-audio: error: cannot reach") and "Traceback" not in err

    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DatasetError, match="is not JSON"):
        read_index(tmp_path / "broken.json")
    (tmp_path / "other.json").write_text('{"tracks": {}}')
    with pytest.raises(DatasetError, match="not a soundata index"):
        read_index(tmp_path / "other.json")
    assert main(["data", "check", str(tmp_path), "--index", str(tmp_path / "missing.json")]) == 2
    assert "missing.json not found" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    with pytest.raises(DatasetError, match="is a file"):
        download_dataset(name, tmp_path / "file", progress=False)


@pytest.mark.parametrize("mirror", ["not a url", "ftp://host/x", "http://", "example.org/files"])
def test_a_mirror_that_is_not_a_url_is_one_line_and_creates_nothing(tmp_path, capsys, mirror):
    assert main(["data", "download", "urbansound8k", str(tmp_path / "us8k"), "--mirror", mirror, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"edge-audio: error: --mirror {mirror!r} is not a URL") and err.count("\n") == 1, err
    assert not (tmp_path / "us8k").exists()
