//===- main.cpp - A C++ program using the installed package -----*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Plans a CPU prefill through the C++ API of an installed libflashprefill
// and checks that bad input is reported by name.
//
//===----------------------------------------------------------------------===//
#include <flashprefill/flashprefill.hpp>

#include <cstdio>
#include <vector>

int main() {
  fp_plan_spec_t spec;
  fp_plan_spec_init(&spec);
  spec.device = FP_DEVICE_CPU;
  spec.head_dim = 64;
  spec.num_q_heads = 2;
  spec.num_kv_heads = 1;
  spec.block_size = 16;
  spec.max_seq_len = 64;
  auto plan = fp::Plan::create(spec);
  if (!plan.isOk()) {
    std::fprintf(stderr, "%s\n", plan.status().toString().c_str());
    return 1;
  }
  const int64_t s = 40, d = 64;
  std::vector<uint16_t> q(s * 2 * d, 0x3f80), k(s * d, 0x3f00),
      v(s * d, 0x3f80), out(s * 2 * d, 0);
  fp_tensor_t tq{q.data(), {1, s, 2, d}, {s * 2 * d, 2 * d, d, 1}};
  fp_tensor_t tk{k.data(), {1, s, 1, d}, {s * d, d, d, 1}};
  fp_tensor_t tv{v.data(), {1, s, 1, d}, {s * d, d, d, 1}};
  fp_tensor_t to{out.data(), {1, s, 2, d}, {s * 2 * d, 2 * d, d, 1}};
  fp_params_t params;
  fp_params_init(&params);
  std::vector<char> workspace(*(*plan)->workspaceBytes(1, s));
  fp::Status status = (*plan)->prefill(&tq, &tk, &tv, &to, &params,
                                       workspace.data(), workspace.size(),
                                       nullptr);
  // Every value is 1.0 (bf16 0x3f80), so every output is exactly 1.0.
  for (uint16_t x : out)
    if (!status.isOk() || x != 0x3f80) {
      std::fprintf(stderr, "prefill: %s\n", status.toString().c_str());
      return 1;
    }
  params.window = 0;
  status = (*plan)->prefill(&tq, &tk, &tv, &to, &params, workspace.data(),
                            workspace.size(), nullptr);
  std::printf("installed package ok; window = 0: %s\n",
              status.toString().c_str());
  return status.code() == fp::StatusCode::kInvalidArgument ? 0 : 1;
}
