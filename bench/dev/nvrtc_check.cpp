//===- bench/dev/nvrtc_check.cpp - Compile one CUDA source with NVRTC -*- C++ -*-===//
//
// SPDX-License-Identifier: Apache-2.0
//
// Dev tool for bench/dev/compile_check.py: compiles a source file with NVRTC
// (the production path for generated kernels) using the given options and
// prints the result, the wall time of nvrtcCompileProgram and the program
// log (which holds the ptxas -v report when -Xptxas -v is passed).
//
//===----------------------------------------------------------------------===//
#include <nvrtc.h>

#include <chrono>
#include <cstdlib>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: nvrtc_check SOURCE [nvrtc options...]\n");
    return 2;
  }
  std::ifstream file(argv[1]);
  std::stringstream text;
  text << file.rdbuf();
  const std::string source = text.str();
  nvrtcProgram prog;
  if (nvrtcCreateProgram(&prog, source.c_str(), argv[1], 0, nullptr, nullptr) != NVRTC_SUCCESS)
    return 2;
  std::vector<const char *> options(argv + 2, argv + argc);
  const auto t0 = std::chrono::steady_clock::now();
  const nvrtcResult result =
      nvrtcCompileProgram(prog, static_cast<int>(options.size()), options.data());
  const auto t1 = std::chrono::steady_clock::now();
  size_t log_size = 0;
  nvrtcGetProgramLogSize(prog, &log_size);
  std::string log(log_size, '\0');
  nvrtcGetProgramLog(prog, &log[0]);
  std::printf("result %s\ncompile_seconds %.3f\n%s\n", nvrtcGetErrorString(result),
              std::chrono::duration<double>(t1 - t0).count(), log.c_str());
  // FP_DUMP_CUBIN=path writes the CUBIN (for cuobjdump / nvdisasm).
  if (const char *dump = std::getenv("FP_DUMP_CUBIN"); dump && result == NVRTC_SUCCESS) {
    size_t size = 0;
    nvrtcGetCUBINSize(prog, &size);
    std::vector<char> cubin(size);
    nvrtcGetCUBIN(prog, cubin.data());
    std::ofstream(dump, std::ios::binary).write(cubin.data(), static_cast<std::streamsize>(size));
  }
  nvrtcDestroyProgram(&prog);
  return result == NVRTC_SUCCESS ? 0 : 1;
}
