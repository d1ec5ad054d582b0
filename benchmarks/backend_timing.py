"""What the benchmark times on each Keras backend, and how it reads the device.

TensorFlow is imported only inside the functions that run on the TensorFlow
backend (and JAX only on JAX), so the benchmark runs where TensorFlow is not
installed (``KERAS_BACKEND=jax``).

* train step: on TensorFlow the project's :class:`dcnet_keras.train_step.TrainStep`
  (``tf.function``, XLA with ``jit``); elsewhere Keras's own step,
  ``model.compile(optimizer, loss=DCNetCrossEntropy(), jit_compile=...)`` +
  ``model.train_on_batch`` (on JAX always ``jax.jit``-compiled, i.e. XLA).
* inference: ``model(x, training=False)`` in a ``tf.function`` on TensorFlow,
  ``jax.jit`` of ``model.stateless_call(..., training=False)`` on JAX,
  ``model.predict_on_batch`` elsewhere.
"""

import os
import platform
import resource
import statistics
import sys
import time

import keras
import numpy as np


def backend():
    return keras.backend.backend()


def median_seconds(fn, warmup, repeats):
    """Median wall time of ``repeats`` calls of ``fn()`` after ``warmup`` untimed ones;
    ``fn`` must return only when the device has finished (it converts its result)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def finished(value):
    """``value`` once the device has computed it: JAX's ``block_until_ready``, a
    TensorFlow tensor's ``numpy()`` (bfloat16 too), else ``keras.ops.convert_to_numpy``."""
    if hasattr(value, "block_until_ready"):
        return value.block_until_ready()
    if hasattr(value, "numpy"):
        return value.numpy()
    return keras.ops.convert_to_numpy(value)


def uses_xla(jit):
    """Whether the timed steps are XLA-compiled: ``jit`` on TensorFlow, always on JAX."""
    return True if backend() == "jax" else bool(jit)


def train_step_description(jit):
    if backend() == "tensorflow":
        return f"dcnet_keras TrainStep (tf.function, jit_compile={bool(jit)})"
    return (f"keras Model.train_on_batch (compile(loss=DCNetCrossEntropy(), "
            f"jit_compile={uses_xla(jit)}))")


def inference_description(jit):
    if backend() == "tensorflow":
        return f"model(x, training=False) in tf.function(jit_compile={bool(jit)})"
    if backend() == "jax":
        return "jax.jit(model.stateless_call(..., training=False))"
    return "model.predict_on_batch(x)"


def make_train_step(model, optimizer, jit):
    """``run(images, labels) -> float``: one training step (forward, backward, one
    ``optimizer`` update), returning the loss once the device has finished."""
    if backend() == "tensorflow":
        from dcnet_keras.train_step import TrainStep

        train_step = TrainStep(model, optimizer, jit_compile=bool(jit))
        return lambda images, labels: float(train_step(images, labels)["loss"].numpy())
    from dcnet_keras.losses import DCNetCrossEntropy

    model.compile(optimizer=optimizer, loss=DCNetCrossEntropy(), jit_compile=uses_xla(jit))
    return lambda images, labels: float(model.train_on_batch(images, labels))


def make_inference(model, jit):
    """``infer(images) -> numpy logits``: the compiled inference-mode forward."""
    if backend() == "tensorflow":
        import tensorflow as tf

        forward = tf.function(lambda x: model(x, training=False), jit_compile=bool(jit))
        return lambda images: forward(images).numpy()
    if backend() == "jax":
        import jax

        @jax.jit
        def stateless_forward(trainable, non_trainable, x):
            return model.stateless_call(trainable, non_trainable, x, training=False)[0]

        def infer(images):
            trainable = [v.value for v in model.trainable_variables]
            non_trainable = [v.value for v in model.non_trainable_variables]
            return np.asarray(stateless_forward(trainable, non_trainable, images))

        return infer
    return lambda images: keras.ops.convert_to_numpy(model.predict_on_batch(images))


def compile_function(fn, jit):
    """``fn`` (arrays -> array) compiled: ``tf.function`` / ``jax.jit``; else ``fn``."""
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn, jit_compile=bool(jit))
    if backend() == "jax":
        import jax

        return jax.jit(fn)
    return fn


def input_gradient(fn):
    """``x -> d fn(x) / dx`` for a scalar ``fn`` (TensorFlow and JAX only)."""
    if backend() == "tensorflow":
        import tensorflow as tf

        def gradient(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = fn(x)
            return tape.gradient(y, x)

        return gradient
    if backend() == "jax":
        import jax

        return jax.grad(fn)
    raise ValueError(f"--patch_norms: needs the tensorflow or jax backend, "
                     f"received KERAS_BACKEND={backend()!r}")


def backend_version():
    """``"<backend> <version>"`` of the Keras backend's own library."""
    name = backend()
    try:
        module = __import__({"tensorflow": "tensorflow", "jax": "jax",
                             "torch": "torch"}.get(name, name))
        return f"{name} {module.__version__}"
    except (ImportError, AttributeError):
        return name


def cpu_name():
    """The CPU model (``/proc/cpuinfo``'s ``model name``) and its core count."""
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} cores)"


def accelerator_names():
    """Names of the GPUs (or other accelerators) the backend will use; ``[]`` for none."""
    if backend() == "tensorflow":
        import tensorflow as tf

        return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                for gpu in tf.config.list_physical_devices("GPU")]
    if backend() == "jax":
        import jax

        return [d.device_kind for d in jax.devices() if d.platform != "cpu"]
    if backend() == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return []


def device_description():
    accelerators = accelerator_names()
    cpu = f"CPU {cpu_name()}"
    return f"GPU {', '.join(accelerators)} + {cpu}" if accelerators else cpu


def peak_rss_bytes():
    """This process's peak resident set size (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def device_peak_bytes():
    """Peak bytes in use on the first accelerator, or ``None`` (CPU, or not reported):
    ``jax.devices()[0].memory_stats()["peak_bytes_in_use"]`` /
    ``tf.config.experimental.get_memory_info("GPU:0")["peak"]``."""
    if not accelerator_names():
        return None
    if backend() == "tensorflow":
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0").get("peak")
    if backend() == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")
    if backend() == "torch":
        import torch

        return torch.cuda.max_memory_allocated()
    return None
