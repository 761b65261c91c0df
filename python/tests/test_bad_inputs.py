"""Hostile inputs to the Python package (numpy on the CPU backend): every
output buffer must be writable, a missing tensor is named, and every integer
is range-checked before ctypes narrows it. Each case must raise
FlashPrefillError naming the argument and leave every buffer untouched.
Needs numpy and pytest only."""

from __future__ import annotations

import re

import numpy as np
import pytest

import flashprefill
import reference as ref

B, SEQ, HQ, HKV, D = 16, 64, 4, 2, 32
NB = SEQ // B
Error = flashprefill.FlashPrefillError


@pytest.fixture
def qkv(rng):
    return ref.structured_qkv(rng, 1, SEQ, HQ, HKV, D, "f16")


@pytest.fixture
def cpu_plan():
    p = flashprefill.plan(dtype="f16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, max_batch=1, device="cpu")
    yield p
    p.close()


def read_only(array):
    """`array` filled with a sentinel, then made read-only."""
    array = np.asarray(array)
    array.fill(7)
    array.flags.writeable = False
    return array


# ---------------------------------------------------------------------------
# Outputs must be writable
# ---------------------------------------------------------------------------

# (entry point, the read-only argument's name); each call gets one read-only
# output and otherwise valid arguments.
READ_ONLY_CASES = [
    ("plan.prefill", "lse"),
    ("plan.attend", "lse"),
    ("plan.prefill", "workspace"),
    ("plan.select", "workspace"),
    ("prefill", "workspace"),
    ("plan.select", "mask.counts"),
    ("plan.select", "mask.ids"),
    ("plan.select", "kept_counter"),
    ("plan.prefill", "kept_counter"),
]


def call_with(p, q, k, v, entry, name, buffer):
    """Calls `entry` with `buffer` as its argument `name`."""
    if entry == "prefill":
        return flashprefill.prefill(q, k, v, block_size=B, **{name: buffer})
    if entry == "plan.select":
        if name.startswith("mask."):
            counts = np.zeros((1, HQ, NB), np.int32)
            ids = np.zeros((1, HQ, NB, NB), np.int32)
            mask = (buffer, ids) if name == "mask.counts" else (counts, buffer)
            return p.select(q, k, mask=mask)
        return p.select(q, k, **{name: buffer})
    if entry == "plan.attend":
        return p.attend(q, k, v, p.select(q, k), **{name: buffer})
    return p.prefill(q, k, v, **{name: buffer})


def buffer_for(p, entry, name):
    if name == "lse":
        return np.empty((1, HQ, SEQ), np.float32)
    if name == "workspace":
        n = (p.select_workspace_bytes if entry == "plan.select" else p.workspace_bytes)(1, SEQ)
        return np.empty(n, np.uint8)
    if name == "mask.counts":
        return np.empty((1, HQ, NB), np.int32)
    if name == "mask.ids":
        return np.empty((1, HQ, NB, NB), np.int32)
    assert name == "kept_counter"
    return np.empty(1, np.uint64)


@pytest.mark.parametrize("entry, name", READ_ONLY_CASES)
def test_read_only_output_is_refused_and_left_alone(qkv, cpu_plan, entry, name):
    q, k, v = qkv
    buffer = read_only(buffer_for(cpu_plan, entry, name))
    with pytest.raises(Error) as info:
        call_with(cpu_plan, q, k, v, entry, name, buffer)
    assert info.value.status_name == "invalid argument"
    assert f"{name}: expected a writable array, got a read-only one" in str(info.value)
    assert (buffer == 7).all(), f"the read-only {name} was written"


@pytest.mark.parametrize("entry, name", READ_ONLY_CASES)
def test_writable_output_of_the_same_call_works(qkv, cpu_plan, entry, name):
    """The counterpart of the read-only case: the call itself is valid."""
    q, k, v = qkv
    buffer = buffer_for(cpu_plan, entry, name)
    buffer.fill(0)
    call_with(cpu_plan, q, k, v, entry, name, buffer)


def test_read_only_inputs_are_fine(qkv, cpu_plan):
    """Only outputs need to be writable: q, k, v and attend's mask are read."""
    q, k, v = (np.array(x) for x in qkv)
    want = cpu_plan.prefill(q, k, v)
    mask = cpu_plan.select(q, k)
    for x in (q, k, v, *mask):
        x.flags.writeable = False
    np.testing.assert_array_equal(cpu_plan.prefill(q, k, v), want)
    np.testing.assert_array_equal(cpu_plan.attend(q, k, v, mask), want)
    np.testing.assert_array_equal(flashprefill.prefill(q, k, v, block_size=B), want)


def test_immutable_bytes_workspace_is_not_mutated(qkv, cpu_plan):
    q, k, v = qkv
    frozen = bytes(cpu_plan.workspace_bytes(1, SEQ))
    view = np.frombuffer(frozen, np.uint8)  # a read-only view of immutable memory
    with pytest.raises(Error, match=re.escape("workspace: expected a writable array")):
        cpu_plan.prefill(q, k, v, workspace=view)
    with pytest.raises(Error, match=re.escape("workspace: expected a writable array")):
        flashprefill.prefill(q, k, v, block_size=B, workspace=view)
    assert frozen == bytes(len(frozen))


@pytest.mark.parametrize("entry", ["plan.select", "plan.prefill"])
def test_empty_kept_counter_view_does_not_write_its_base(qkv, cpu_plan, entry):
    q, k, v = qkv
    base = np.zeros(4, np.uint64)
    empty_view = base[2:2]  # its data pointer is &base[2]
    with pytest.raises(Error, match=re.escape(
            "kept_counter: expected at least one int64 or uint64 element, got shape (0,)")):
        call_with(cpu_plan, q, k, v, entry, "kept_counter", empty_view)
    assert not base.any(), "the 0-element view's base was written"


def test_kept_counter_must_be_an_array(qkv, cpu_plan):
    q, k, _ = qkv
    with pytest.raises(Error, match=re.escape(
            "kept_counter: expected a torch.Tensor or numpy.ndarray, got int")):
        cpu_plan.select(q, k, kept_counter=5)


# ---------------------------------------------------------------------------
# Missing tensors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["prefill", "plan.prefill", "plan.attend"])
def test_missing_v_is_named(qkv, cpu_plan, entry):
    q, k, _ = qkv
    with pytest.raises(Error) as info:
        if entry == "prefill":
            flashprefill.prefill(q, k, None, block_size=B)
        elif entry == "plan.prefill":
            cpu_plan.prefill(q, k, None)
        else:
            cpu_plan.attend(q, k, None, cpu_plan.select(q, k))
    assert "v: expected a torch.Tensor or numpy.ndarray, got NoneType" in str(info.value)


@pytest.mark.parametrize("missing", ["q", "k"])
def test_missing_q_or_k_is_named(qkv, cpu_plan, missing):
    q, k, v = qkv
    args = {"q": q, "k": k}
    args[missing] = None
    for call in (lambda: flashprefill.prefill(args["q"], args["k"], v, block_size=B),
                 lambda: cpu_plan.prefill(args["q"], args["k"], v),
                 lambda: cpu_plan.select(args["q"], args["k"])):
        with pytest.raises(Error, match=re.escape(
                f"{missing}: expected a torch.Tensor or numpy.ndarray, got NoneType")):
            call()


# ---------------------------------------------------------------------------
# Integers are range-checked before ctypes narrows them
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("device", [2 ** 32 - 1, 2 ** 31, -2, 2 ** 64 - 1, "cuda:4294967295"])
def test_out_of_range_device_is_refused_not_wrapped_to_cpu(device):
    with pytest.raises(Error) as info:
        flashprefill.plan(dtype="f16", head_dim=D, num_q_heads=HQ, num_kv_heads=HKV,
                          block_size=B, max_seq_len=SEQ, device=device)
    assert str(info.value).startswith("invalid argument: device: expected")
    assert "-1 (CPU)" in str(info.value) and "2147483647" in str(info.value)


@pytest.mark.parametrize("value", [2 ** 70, 2 ** 63, -(2 ** 63) - 1])
def test_out_of_range_dense_below_tokens_is_refused(qkv, cpu_plan, value):
    q, k, v = qkv
    with pytest.raises(Error, match=re.escape(
            f"params.dense_below_tokens: expected an integer in [-1, 2^63) (-1 = the plan's cost "
            f"model, 0 = never), got {value}")):
        cpu_plan.prefill(q, k, v, dense_below_tokens=value)


@pytest.mark.parametrize("method", ["workspace_bytes", "select_workspace_bytes", "mask_bytes",
                                    "empty_workspace"])
@pytest.mark.parametrize("batch, seq_len, named", [
    (1, 2 ** 70, "seq_len"),
    (1, 2 ** 64 + 5, "seq_len"),
    (2 ** 64 + 1, SEQ, "batch"),
])
def test_size_queries_report_the_value_given(cpu_plan, method, batch, seq_len, named):
    value = batch if named == "batch" else seq_len
    with pytest.raises(Error) as info:
        getattr(cpu_plan, method)(batch, seq_len)
    message = str(info.value)
    assert f"{named}: expected" in message and message.endswith(f"got {value}"), message


def test_size_queries_check_types(cpu_plan):
    with pytest.raises(Error, match=re.escape("seq_len: expected an integer, got 1.5")):
        cpu_plan.workspace_bytes(1, 1.5)


@pytest.mark.parametrize("stream", [2 ** 64, -1, 2 ** 70])
def test_out_of_range_stream_handle_is_refused(qkv, cpu_plan, stream):
    q, k, v = qkv
    with pytest.raises(Error, match=re.escape(
            f"stream: expected a torch.cuda.Stream or a CUstream handle (an integer in "
            f"[0, 2^64)), got {stream}")):
        cpu_plan.prefill(q, k, v, stream=stream)


@pytest.mark.parametrize("scale", [1e-50, 1e39])
def test_scale_outside_float32_is_refused(qkv, cpu_plan, scale):
    """1e-50 would round to a float32 0, which the library reads as 'the
    default 1/sqrt(d)'; 1e39 would become infinity."""
    q, k, v = qkv
    with pytest.raises(Error, match=re.escape(
            f"scale: expected a positive finite number representable as float32, or None for "
            f"1/sqrt(head_dim), got {scale!r}")):
        cpu_plan.prefill(q, k, v, scale=scale)


def test_missing_v_is_named_for_an_empty_sequence_too():
    q = np.zeros((1, 0, HQ, D), np.float16)
    k = np.zeros((1, 0, HKV, D), np.float16)
    with pytest.raises(Error, match=re.escape(
            "v: expected a torch.Tensor or numpy.ndarray, got NoneType")):
        flashprefill.prefill(q, k, None)


@pytest.mark.parametrize("mask", [None, (1, 2, 3), 5])
def test_attend_names_a_malformed_mask(qkv, cpu_plan, mask):
    q, k, v = qkv
    with pytest.raises(Error, match=re.escape(
            "mask: expected a flashprefill.Mask or a (counts, ids) pair, got")):
        cpu_plan.attend(q, k, v, mask)
