"""`make images`: images built here with buildah + mmdebstrap (images/build.py).

Builds (or reuses from the cache) pause, python and worker; checks the archives carry the charts' references, a
second build is a pure cache hit, the content hash follows the recipe files, and the app images run as 1000:0.
Warm (cached archives) this layer takes a few seconds; cold ~2-3 min, plus ~4 min if Langflow is not cached.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from images import build as images

pytestmark = [pytest.mark.images, pytest.mark.timeout(3600)]

FAST = ["pause", "python", "worker"]


@pytest.fixture(scope="module")
def built() -> dict[str, images.Built]:
    return {b.name: b for b in images.build(FAST)}


def test_archives_exist_and_carry_the_refs(built: dict[str, images.Built]) -> None:
    assert sorted(built) == sorted(FAST)
    for b in built.values():
        assert b.archive.is_file(), b
        assert b.archive.name == f"{b.name}-{b.hash[:12]}.tar"
        assert b.refs, b.name
        manifest = images.read_archive_manifest(b.archive)
        assert len(manifest) == 1
        assert manifest[0]["RepoTags"] == b.refs
    assert "registry.k8s.io/pause:3.10" in built["pause"].refs
    # the worker is tagged exactly as the runtime chart names it (registry "" = docker.io)
    assert built["worker"].refs == [images.chart_ref("langflow-runtime:worker.image")]


def test_second_build_is_a_cache_hit(built: dict[str, images.Built]) -> None:
    mtimes = {n: b.archive.stat().st_mtime_ns for n, b in built.items()}
    calls = images.BUILDAH_CALLS
    again = {b.name: b for b in images.build(FAST, progress=lambda _: None)}
    assert calls == images.BUILDAH_CALLS, "a cached build must not run buildah"
    for name, b in again.items():
        assert b.archive == built[name].archive
        assert b.hash == built[name].hash
        assert b.archive.stat().st_mtime_ns == mtimes[name]


def test_hash_follows_the_recipe_files(tmp_path: Path) -> None:
    for name in FAST:
        shutil.copytree(images.IMAGES_DIR / name, tmp_path / name)
    original = images.hashes(images.IMAGES_DIR)
    copy = images.hashes(tmp_path)
    assert {n: copy[n] for n in FAST} == {n: original[n] for n in FAST}
    # a change in pause.c changes pause only
    (tmp_path / "pause" / "pause.c").write_text((tmp_path / "pause" / "pause.c").read_text() + "\n/* changed */\n")
    changed = images.hashes(tmp_path)
    assert changed["pause"] != original["pause"]
    assert changed["python"] == original["python"] and changed["worker"] == original["worker"]
    # a change in the base changes every image built FROM it
    (tmp_path / "python" / "Dockerfile").write_text((tmp_path / "python" / "Dockerfile").read_text() + "# changed\n")
    changed = images.hashes(tmp_path)
    assert changed["python"] != original["python"] and changed["worker"] != original["worker"]
    # tags and descriptions are not content: editing refs/upstream keeps the hash (the archive is re-tagged)
    recipe = tmp_path / "pause" / "image.yaml"
    recipe.write_text(recipe.read_text().replace('upstream: "', 'upstream: "edited '))
    assert images.hashes(tmp_path)["pause"] == changed["pause"]


def test_worker_runs_as_1000_0(built: dict[str, images.Built]) -> None:
    cfg = images.read_archive_config(built["worker"].archive)["config"]
    assert cfg["User"] == "1000:0"
    assert cfg["Entrypoint"] == ["python", "-m", "langflow_worker"]
    assert any(e.startswith("PATH=/opt/worker/venv/bin:") for e in cfg["Env"])
    pause = images.read_archive_config(built["pause"].archive)["config"]
    assert pause["Entrypoint"] == ["/pause"] and pause["User"] == "65535:65535"


def test_langflow_images_match_the_official_shape() -> None:
    """Langflow's archives from the cache (built here when missing; the e2e layer needs them anyway)."""
    got = {b.name: b for b in images.build(["langflow", "langflow-backend"])}
    ui = images.read_archive_config(got["langflow"].archive)["config"]
    backend = images.read_archive_config(got["langflow-backend"].archive)["config"]
    for cfg in (ui, backend):
        assert cfg["User"] == "1000:0"
        assert cfg["WorkingDir"] == "/app"
        assert any(e.startswith("PATH=/app/.venv/bin:") for e in cfg["Env"])
        assert "LANGFLOW_HOST=0.0.0.0" in cfg["Env"] and "LANGFLOW_PORT=7860" in cfg["Env"]
    assert ui["Cmd"] == ["langflow", "run"]
    assert backend["Cmd"] == ["python", "-m", "langflow", "run", "--backend-only"]
    assert "LANGFLOW_AUTO_LOGIN=false" in backend["Env"]
    assert got["langflow"].refs == [images.chart_ref("langflow-ide:image")]
    assert got["langflow-backend"].refs == [images.chart_ref("langflow-runtime:image")]


def test_refs_are_composed_like_the_chart_helper(tmp_path: Path) -> None:
    chart = tmp_path / "c"
    chart.mkdir()
    (chart / "values.yaml").write_text(
        "a: {image: {registry: '', repository: x/y, tag: '1.0'}}\n"
        "b: {image: {registry: quay.io, repository: p/q, tag: v2}}\n"
        "c: {image: {repository: redis, tag: '7'}}\n"
    )
    assert images.chart_ref("c:a.image", tmp_path) == "docker.io/x/y:1.0"
    assert images.chart_ref("c:b.image", tmp_path) == "quay.io/p/q:v2"
    assert images.chart_ref("c:c.image", tmp_path) == "docker.io/library/redis:7"


def test_table_lists_every_recipe() -> None:
    out = images.table()
    for name, recipe in images.load_recipes().items():
        for ref in recipe.refs:
            assert f"`{ref}`" in out, name


def test_a_failed_build_names_the_image_step_and_log(tmp_path: Path) -> None:
    recipe = tmp_path / "broken"
    recipe.mkdir()
    (recipe / "image.yaml").write_text("base: scratch\nrefs: [localhost/lfp-test/broken:1]\n")
    (recipe / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCOPY not-there /x\n")
    with pytest.raises(images.BuildError) as err:
        images.build(["broken"], progress=lambda _: None, recipes=tmp_path)
    msg = str(err.value)
    assert "broken" in msg and "'buildah bud' failed" in msg
    assert str(images.logs_dir() / "broken.log") in msg
    assert not list(images.archives_dir().glob("broken-*.tar"))


def test_a_stuck_step_times_out(tmp_path: Path) -> None:
    runner = images.Runner(progress=lambda _: None)
    log = tmp_path / "stuck.log"
    with pytest.raises(images.BuildError, match=r"stuck: step 'sleep' timed out after 1s; log: .*stuck\.log"):
        runner.run(["sleep", "60"], image="stuck", step="sleep", log=log, timeout=1)
