"""Devices for distributed solutions: logical CPUs standing in for GPUs on one machine."""

from __future__ import annotations


def use_logical_cpus(n: int) -> None:
    """Split the physical CPU into ``n`` logical devices /cpu:0 ... /cpu:{n-1}.

    Must run before TensorFlow initializes its devices (before any op or model is built),
    once per process; the CLI runs every solution in a fresh process. On a machine with
    GPUs the same code takes ``/gpu:0 ... /gpu:{n-1}`` instead, with no configuration.
    Calling it again with a count the process already has is fine; RuntimeError if the
    devices were initialized with fewer.
    """
    import tensorflow as tf  # the kit loads TensorFlow only when a solution asks for it

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * n
        )
    except RuntimeError:  # devices already initialized: fine if they already match
        pass
    found = len(tf.config.list_logical_devices("CPU"))
    if found < n:
        raise RuntimeError(
            f"need {n} logical CPU devices, found {found}: TensorFlow initialized its devices "
            "before use_logical_cpus() ran; run this solution in a fresh process"
        )
