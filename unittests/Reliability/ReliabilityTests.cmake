#===- unittests/Reliability/ReliabilityTests.cmake - Bad inputs, stress ----===#
#
# SPDX-License-Identifier: Apache-2.0
#
# FPReliabilityTests: the rows of docs/bad-inputs.md that FPApiTests lacks,
# and the kernel-cache stress test (8 processes, some SIGKILLed; it runs
# fp-cache-stress-worker, the plan's codegen + cache path). fp-opt's bad
# flags are a shell test. Needs the compiler (codegen, libflashprefill).
#
#===------------------------------------------------------------------------===#
# Included by CMakeLists.txt here (add_subdirectory(Reliability)) or by
# cmake/FPSanitizers.cmake at the end of the top-level CMakeLists.txt.
set_property(GLOBAL PROPERTY FP_RELIABILITY_DIR_ADDED TRUE)
set(FP_RELIABILITY_DIR ${CMAKE_CURRENT_LIST_DIR})
if(FP_ENABLE_COMPILER)
  add_executable(fp-cache-stress-worker ${FP_RELIABILITY_DIR}/CacheStressWorker.cpp)
  target_link_libraries(fp-cache-stress-worker PRIVATE FPCompiler FPRuntimeCore)

  add_fp_unittest(FPReliabilityTests
    ${FP_RELIABILITY_DIR}/BadInputTest.cpp
    ${FP_RELIABILITY_DIR}/BadInputC.c
    ${FP_RELIABILITY_DIR}/CacheStressTest.cpp
    ${FP_RELIABILITY_DIR}/KernelCacheHardeningTest.cpp
    LIBS flashprefill FPRuntimeCore)
  add_dependencies(FPReliabilityTests fp-cache-stress-worker)
  target_compile_definitions(FPReliabilityTests PRIVATE
    FP_STRESS_WORKER="$<TARGET_FILE:fp-cache-stress-worker>")

  add_test(NAME fp-opt-bad-inputs
    COMMAND sh ${FP_RELIABILITY_DIR}/fp-opt-bad-inputs.sh
      $<TARGET_FILE:fp-opt> ${PROJECT_SOURCE_DIR})
  add_test(NAME fp-tools-bad-flags
    COMMAND sh ${FP_RELIABILITY_DIR}/tools-bad-flags.sh
      $<TARGET_FILE:fp-bench> $<TARGET_FILE:fp-tune>)
endif()
