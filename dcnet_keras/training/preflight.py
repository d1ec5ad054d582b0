"""Checks made before any long work (data download, model build): one line each.

* :func:`check_folder`: ``--model_dir`` / ``--log_dir`` can be created and written
  (checked without creating anything: the nearest existing ancestor must be a
  writable folder, and nothing on the way may be a file);
* :func:`check_cluster`: ``--strategy multiworker`` needs a valid ``TF_CONFIG``
  (JSON with a ``cluster`` of task lists and a ``task`` naming one of them).
"""

import json
import os


def check_folder(path, flag):
    """Raise a one-line ValueError naming ``flag`` unless ``path`` is (or can become) a
    writable folder."""
    path = os.path.abspath(path)
    if os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{flag}: {path} is a file, not a folder")
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise ValueError(f"{flag}: cannot create {path}: {probe} is a file, not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{flag}: cannot create or write {path}: {probe} is not writable")
    return path


def check_cluster(strategy, environ=os.environ):
    """Raise a one-line ValueError unless ``TF_CONFIG`` suits ``strategy``."""
    text = environ.get("TF_CONFIG")
    if strategy != "multiworker":
        return None
    if not text:
        raise ValueError("--strategy multiworker: TF_CONFIG is not set (it names the cluster "
                         "and this process's task, e.g. {\"cluster\": {\"worker\": [\"host1:2222\", "
                         "\"host2:2222\"]}, \"task\": {\"type\": \"worker\", \"index\": 0}})")
    try:
        config = json.loads(text)
    except ValueError as error:
        raise ValueError(f"TF_CONFIG: not valid JSON ({error}), received {text[:200]!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    if not isinstance(cluster, dict) or not cluster or not all(
            isinstance(v, list) and v for v in cluster.values()):
        raise ValueError(f"TF_CONFIG: 'cluster' must map task types to lists of host:port, "
                         f"received {cluster!r}")
    if not isinstance(task, dict) or task.get("type") not in cluster:
        raise ValueError(f"TF_CONFIG: 'task' must name a type of the cluster "
                         f"({', '.join(cluster)}), received {task!r}")
    index = task.get("index", 0)
    if not isinstance(index, int) or not 0 <= index < len(cluster[task["type"]]):
        raise ValueError(f"TF_CONFIG: task index must be 0..{len(cluster[task['type']]) - 1} "
                         f"for type {task['type']!r}, received {index!r}")
    return config
