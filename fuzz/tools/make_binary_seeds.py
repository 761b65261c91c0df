#!/usr/bin/env python3
"""Hand-made seeds for fp-fuzz-cache-entry (the input format is described in
fuzz/fuzz_cache_entry.cpp) and starter seeds for fp-fuzz-capi (the fuzzer
grows the rest; scripts/fuzz.sh with FP_FUZZ_MERGE=1 merges them back).
Usage: fuzz/tools/make_binary_seeds.py"""
import pathlib
import random
import struct

root = pathlib.Path(__file__).resolve().parents[2]
corpus = root / "fuzz/corpus"

def well_formed(flags, binary, manifest, log, override=0, value=0):
    return (bytes([1]) + struct.pack("<IBQ", flags, override, value) +
            struct.pack("<HH", len(binary), len(manifest)) + binary + manifest + log)

log = (root / "unittests/Runtime/Inputs/ptxas-sm80.log").read_bytes()
manifest = (corpus / "manifest/prefill-sm_80.txt").read_bytes()
elf = b"\x7fELF" + bytes(range(64))
seeds = {
    "wellformed-cubin-ptxas-log": well_formed(1, elf, manifest, log),
    "wellformed-ptx": well_formed(0, b".version 8.0\n.target sm_80\n\x00", b"params_abi 1\n", b""),
    "wellformed-empty-binary": well_formed(1, b"", manifest, log),
    "wellformed-bad-version": well_formed(1, elf, b"", b"", override=1, value=2),
    "wellformed-wrong-key": well_formed(1, elf, b"", b"", override=2, value=0xAB),
    "wellformed-binary-size-huge": well_formed(1, elf, b"", b"", override=3, value=1 << 40),
    "wellformed-manifest-size-off": well_formed(1, elf, b"x", b"", override=4, value=2),
    "wellformed-log-size-max": well_formed(1, elf, b"", b"log", override=5, value=(1 << 64) - 1),
    "raw-empty": bytes([0]),
    "raw-magic-only": bytes([0]) + b"FPKCACHE",
    "raw-header-zeros": bytes([0]) + b"FPKCACHE" + bytes(96),
    "raw-garbage": bytes([2]) + bytes(random.Random(7).getrandbits(8) for _ in range(300)),
}
out = corpus / "cache-entry"
out.mkdir(parents=True, exist_ok=True)
for name, data in seeds.items():
    (out / name).write_bytes(data)

out = corpus / "capi"
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(13)
for n in (64, 160, 400):
    (out / f"zeros-{n}").write_bytes(bytes(n))
for i in range(4):
    (out / f"random-{i}").write_bytes(bytes(rng.getrandbits(8) for _ in range(256)))

# Structured fp-fuzz-capi seeds for the entry points and fields added after
# the first seeds: fp_merge_states, the struct initialisers with any size,
# fp_pool_keys_varlen / fp_varlen_t.pooled_k and params.mean_correction.
# The bytes follow the decoding order of fuzz/fuzz_capi.cpp (an exhausted
# input reads as zeros); FP_FUZZ_CAPI_TRACE=1 shows what each one calls.

def spec():
    """A valid CPU plan: bf16, d 16, 1 kv head, 2 q heads, block 16,
    max_batch 2, max_seq_len 64 (decodeSpec: a value, then 'keep it')."""
    return bytes([0,            # struct_size: sizeof
                  0, 0,         # dtype bf16
                  0, 0,         # head_dim 16
                  0,            # head_dim_v 0
                  0, 0,         # num_kv_heads 1
                  1, 0,         # num_q_heads 2
                  0, 0,         # block_size 16
                  0,            # causal 1
                  0, 0,         # pooled_queries 0
                  1, 0]) + struct.pack("<H", 63) + bytes([0,  # max_batch 2, max_seq_len 64
                  0,            # device CPU
                  0])           # max_workspace_bytes 0

def merge_state(dtype, layout=(0,), lse=(0,), pointers=0, misalign=0):
    # dtype, shape kept, O layout (+ its bytes), LSE layout (+ its bytes)
    return bytes([0, dtype, 0]) + bytes(layout) + bytes(lse) + bytes([pointers, misalign])

def merge(cpp, dims, a, b, o, b_alias=0, b_lse_alias=0, out_o=(0,), out_lse=(0,),
          filler=0x9E3779B97F4A7C15, mode=1, lse_mode=1):
    body = bytes([232 if cpp else 144, 0])  # apiKind, no NULL plan pointers
    for flag, value in zip((13, 13, 13, 13), dims):
        body += bytes([flag, value])
    body += a + b + o + bytes([b_alias, b_lse_alias]) + bytes(out_o) + bytes(out_lse)
    body += bytes([0]) + struct.pack("<Q", filler) + bytes([mode, lse_mode])
    return spec() + body

F32, BF16, F16 = 2, 0, 1
structured = {
    # [2, 5, 3, 16]: a f32 merged in place (out.o and out.lse exactly a's)
    # with a head-major bf16 b whose LSE has batch stride 0; LSEs with
    # -inf / +inf / NaN / huge values.
    "merge-in-place-f32": merge(False, (1, 4, 2, 4), merge_state(F32),
                                merge_state(BF16, layout=(170,), lse=(110,)),
                                merge_state(F32), out_o=(160,), out_lse=(160,)),
    # C++ fp::Plan::mergeStates, [1, 7, 2, 8]: padded f16 O, varlen and
    # FlashInfer LSE layouts, out.lse NULL (not written).
    "merge-cpp-lse-layouts": merge(True, (0, 6, 1, 3),
                                   merge_state(F16, layout=(130, 3, 5, 7), lse=(100,)),
                                   merge_state(BF16, lse=(150, 1)),
                                   merge_state(F16, pointers=246), lse_mode=3),
    # out.o 16 bytes into a.o (an overlap that is not in place): refused.
    "merge-overlap-refused": merge(False, (1, 4, 2, 4), merge_state(F32),
                                   merge_state(BF16), merge_state(F32),
                                   out_o=(200, 12)),
    # [3, 11, 4, 24], b is a itself (a state merged with itself: O
    # unchanged, LSE + log 2; -inf rows stay empty), out bf16 of its own.
    "merge-self": merge(False, (2, 10, 3, 5), merge_state(F16), merge_state(F16),
                        merge_state(BF16), b_alias=240, b_lse_alias=240, lse_mode=3),
}

# fp_params_init_sized(p, 96) (version 2's size: mean_correction not
# written), then the exported fp_plan_spec_init of older binaries, then
# fp_params_init_sized(p, SIZE_MAX) (a struct claimed larger than ours).
init = spec() + bytes([136, 2])  # apiKind: initialisers; 3 calls
init += bytes([0, 150, 7]) + bytes(range(96)) + bytes([0])  # params, marks[7] = 96
init += bytes([1, 245]) + bytes(range(100, 172)) + bytes([0])  # spec, exported (72 bytes)
init += bytes([0, 150, 13]) + bytes(range(168)) + bytes([0])  # params, SIZE_MAX
structured["init-sized"] = init

def dense(op, tail, b=2, s=40):
    """A whole-prompt C API call on spec(): contiguous tensors, default
    params, an LSE, every causal block in the mask, the exact workspace;
    `tail` is what fuzz_capi.cpp decodes after them (mean_correction)."""
    body = bytes([0, 0,         # apiKind: C API, whole prompt; plan created
                  0,            # no workspace-size queries
                  0, b - 1, 0, s - 1])
    body += struct.pack("<Q", 0x2545F4914F6CDD1D) + bytes([0])  # filler
    body += bytes([0, 0, 0, 0,  # q, k, v, out contiguous
                   0, 0,        # default params, not NULL
                   1, 0, 0,     # lse; no kept counter
                   0, 0, 1, 0,  # mask of the problem's shape, every causal block
                   op, 0, 0, 0])  # op, exact workspace, not NULL, the plan
    return spec() + body + bytes(tail)

# mean_correction 1 with every causal block kept (fp_attend's mask; fp_prefill
# below dense_below_tokens = 700): the result must equal the one without.
structured["dense-attend-mean-correction"] = dense(1, [128])
structured["dense-prefill-mean-correction-dense"] = dense(2, [200] + list(struct.pack("<H", 701)))
# mean_correction 2: an error naming params.mean_correction.
structured["dense-prefill-mean-correction-2"] = dense(2, [240, 1, 3])

# The varlen seeds end where fuzz_capi.cpp starts decoding these fields:
# [mean_correction kind, pooled_k kind, pruning (+ alpha), (pool call
# arguments)]. Pruning (sink 0, window 1, last_n 0, alpha 0.5) makes the
# pooled keys and the mean correction matter on these short sequences.
packed = (out / "varlen-packed-select-attend").read_bytes()
paged = (out / "varlen-paged-prefill").read_bytes()
prune = [200, 50]
structured.update({
    # pooled_k from fp_pool_keys_varlen: select + attend must not change.
    "varlen-packed-pooled-keys": packed + bytes([0, 150] + prune),
    # The same with mean correction, paged prefill.
    "varlen-paged-pooled-keys-mean-correction": paged + bytes([130, 150] + prune),
    # mean_correction 1, prefill below dense_below_tokens = 700.
    "varlen-paged-mean-correction-dense": paged + bytes([200]) + struct.pack("<H", 701) + bytes([0, 0]),
    # fp_pool_keys_varlen as the call, twice; then with varlen.pooled_k set.
    "varlen-pool-keys": paged + bytes([0, 215, 0, 0]),
    "varlen-pool-keys-pooled-k-set": packed + bytes([0, 215, 0, 230]),
    # pooled_k holding any bits: any mask, which attend must accept.
    "varlen-pooled-keys-garbage": packed + bytes([0, 240] + prune),
})
for name, data in structured.items():
    (out / name).write_bytes(data)
print("seeds written")
