"""The local node carries the shoprank plugin: its unpacked folder joins the classpath after the
zip plugins (one jar per artifact) and the launcher is told to load it."""

from __future__ import annotations

from pathlib import Path

from engines.opensearch_node import PLUGIN_FOLDER, LocalNode, NodeBuild


def test_the_plugin_folder_joins_the_classpath_and_the_launchers_plugins(tmp_path: Path) -> None:
    (tmp_path / "plugins" / "knn").mkdir(parents=True)
    knn_guava = tmp_path / "plugins" / "knn" / "guava-32.1.3-jre.jar"
    knn_guava.touch()
    plugin = tmp_path / "shoprank-target" / PLUGIN_FOLDER
    plugin.mkdir(parents=True)
    for jar in ("guava-33.6.0-android.jar", "grpc-api-1.83.1.jar", "shoprank-opensearch-plugin-1.jar"):
        (plugin / jar).touch()
    build = NodeBuild(tmp_path, extra_plugins=(plugin,))
    build.classpath_file.write_text("")
    assert build.classpath() == [
        build.classes_dir,
        knn_guava,  # the first guava wins: one version of its classes on the classpath
        plugin / "grpc-api-1.83.1.jar",
        plugin / "shoprank-opensearch-plugin-1.jar",
    ]
    command = LocalNode(build, tmp_path / "home", http_port=9999).command()
    roots = [command[i + 1] for i, arg in enumerate(command) if arg == "--plugins"]
    assert roots == [str(tmp_path / "plugins"), str(plugin.parent)]
